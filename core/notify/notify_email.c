/* Email channels: the message is built once (notify_mime.c), then each
 * attempt runs curl_easy_perform on the libuv thread pool and its result
 * is judged back on the loop (notify.h says why the pool and not curl
 * multi). At most opts.smtp_threads attempts hold a pool thread; the
 * others wait in n->smtp_wait.
 *
 * Closing stops an attempt in progress: it sets `abort`, which the
 * progress callback turns into CURLE_ABORTED_BY_CALLBACK, and shuts the
 * transfer's sockets down, because curl 7.88 waits for the reply to the
 * end of the message in a loop that never calls the progress callback (a
 * stalled server would hold the close for the whole timeout). Sockets are
 * opened and closed through callbacks under `lock`, so the loop thread
 * never touches a descriptor curl has closed and the system reused.
 *
 * TLS: smtps:// is TLS from the start. smtp:// upgrades with STARTTLS when
 * the server offers it (CURLUSESSL_TRY), and requires it (CURLUSESSL_ALL)
 * when settings.starttls is true or the channel has credentials: a
 * password never crosses the network in clear. Certificates are always
 * verified (opts.smtp_ca_file adds a private CA).
 *
 * Replies: a 4xx reply or a transport failure is retried; a 5xx reply
 * (a refused recipient, 535 bad credentials) or a TLS requirement the
 * server cannot meet is permanent. Recipients are all or nothing: one
 * refused address fails the send, so no retry mails the others twice. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "notify/notify_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/text.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))
#define SOCKS_MAX 4 /* a connection, and happy eyeballs' second try */

struct rm__notify_smtp {
  uv_work_t work;
  rm__notify_send *x;
  char *url, *from, *user, *pass; /* pass wiped before free */
  struct curl_slist *rcpt;        /* "<address>" */
  long use_ssl;
  char *msg;
  size_t msg_len, off;
  char origin[272]; /* "host:port", what texts name */
  unsigned max_attempts, backoff_ms, max_delay_ms, timeout_ms;
  atomic_int abort;
  uv_mutex_t lock;                 /* guards socks between the loop and the pool */
  curl_socket_t socks[SOCKS_MAX];  /* open sockets of the attempt, or CURL_SOCKET_BAD */
  bool running;  /* queued on the pool; its after-work has not run */
  bool cut;      /* the close stopped an attempt */
  char last[600]; /* what went wrong on the last attempt */
  /* the attempt's result: written by the pool thread, read after it */
  CURLcode rc;
  long code;
  char errbuf[CURL_ERROR_SIZE];
  char reply[240]; /* the server's last reply line */
};

/* ---- the attempt, on a pool thread ---------------------------------------- */

static size_t on_read(char *buf, size_t size, size_t n, void *ud) {
  rm__notify_smtp *s = ud;
  size_t k = s->msg_len - s->off < size * n ? s->msg_len - s->off : size * n;
  memcpy(buf, s->msg + s->off, k);
  s->off += k;
  return k;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  rm__notify_smtp *s = ud;
  return atomic_load(&s->abort);
}

/* Keeps the server's last refusal (a 4xx or 5xx reply line), which is
 * why a send failed: curl's QUIT afterwards gets a "221" that says
 * nothing. Only what the server sent: the commands curl sends (AUTH with
 * the password) are never looked at. */
static int on_debug(CURL *e, curl_infotype type, char *data, size_t n, void *ud) {
  (void)e;
  rm__notify_smtp *s = ud;
  if (type != CURLINFO_HEADER_IN || n < 3 || (data[0] != '4' && data[0] != '5')) return 0;
  while (n && (data[n - 1] == '\n' || data[n - 1] == '\r')) n--;
  n = rm_utf8_valid_prefix(data, n < sizeof s->reply ? n : sizeof s->reply - 1);
  for (size_t i = 0; i < n; i++) s->reply[i] = (unsigned char)data[i] < 0x20 ? ' ' : data[i];
  s->reply[n] = '\0';
  return 0;
}

static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  (void)purpose;
  rm__notify_smtp *s = ud;
  uv_mutex_lock(&s->lock);
  curl_socket_t fd = CURL_SOCKET_BAD;
  for (size_t i = 0; i < SOCKS_MAX && !atomic_load(&s->abort); i++)
    if (s->socks[i] == CURL_SOCKET_BAD) {
      fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
      s->socks[i] = fd;
      break;
    }
  uv_mutex_unlock(&s->lock);
  return fd;
}

static int on_close_socket(void *ud, curl_socket_t fd) {
  rm__notify_smtp *s = ud;
  uv_mutex_lock(&s->lock);
  for (size_t i = 0; i < SOCKS_MAX; i++)
    if (s->socks[i] == fd) s->socks[i] = CURL_SOCKET_BAD;
  uv_mutex_unlock(&s->lock);
  return close(fd);
}

static void smtp_work(uv_work_t *w) {
  rm__notify_smtp *s = container_of(w, rm__notify_smtp, work);
  const char *ca = s->x->n->opts.smtp_ca_file;
  s->off = 0;
  s->code = 0;
  s->errbuf[0] = s->reply[0] = '\0';
  CURL *e = curl_easy_init();
  if (!e) {
    s->rc = CURLE_OUT_OF_MEMORY;
    return;
  }
  char from[300];
  snprintf(from, sizeof from, "<%s>", s->from);
  curl_easy_setopt(e, CURLOPT_URL, s->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
  curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
  curl_easy_setopt(e, CURLOPT_MAIL_RCPT, s->rcpt);
  curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(e, CURLOPT_READDATA, s);
  curl_easy_setopt(e, CURLOPT_USE_SSL, s->use_ssl);
  if (ca) curl_easy_setopt(e, CURLOPT_CAINFO, ca);
  if (s->user) curl_easy_setopt(e, CURLOPT_USERNAME, s->user);
  if (s->pass) curl_easy_setopt(e, CURLOPT_PASSWORD, s->pass);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, s);
  curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
  curl_easy_setopt(e, CURLOPT_DEBUGDATA, s);
  curl_easy_setopt(e, CURLOPT_VERBOSE, 1L); /* feeds on_debug; nothing is printed */
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, s);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, s);
  s->rc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &s->code);
  curl_easy_cleanup(e);
}

/* ---- scheduling, on the loop ------------------------------------------------ */

static void smtp_after(uv_work_t *w, int status);

static void run(rm__notify_send *x) {
  rm_notifier *n = x->n;
  n->smtp_running++;
  x->smtp->running = true;
  x->attempts++;
  uv_queue_work(n->loop, &x->smtp->work, smtp_work, smtp_after); /* cannot fail: all arguments set */
}

/* Starts an attempt now or when a thread is free. */
static void enqueue(rm__notify_send *x) {
  rm_notifier *n = x->n;
  if (n->smtp_running < n->opts.smtp_threads && !n->smtp_wait) {
    run(x);
    return;
  }
  x->wait_next = NULL;
  if (n->smtp_wait_tail) n->smtp_wait_tail->wait_next = x;
  else n->smtp_wait = x;
  n->smtp_wait_tail = x;
}

static void run_waiting(rm_notifier *n) {
  while (!n->closing && n->smtp_wait && n->smtp_running < n->opts.smtp_threads) {
    rm__notify_send *x = n->smtp_wait;
    n->smtp_wait = x->wait_next;
    if (!n->smtp_wait) n->smtp_wait_tail = NULL;
    run(x);
  }
}

static void on_retry(uv_timer_t *t) { enqueue(container_of(t, rm__notify_send, timer)); }

/* Records what the attempt got; true when another attempt may help. */
static bool judge(rm__notify_send *x) {
  rm__notify_smtp *s = x->smtp;
  x->status = s->code;
  if (s->rc == CURLE_OK) {
    x->delivered = true;
    return false;
  }
  const char *detail = s->reply[0] ? s->reply : s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->rc);
  x->err = RM_EHTTP;
  x->permanent = true;
  if (s->code >= 400 && s->code < 600) {
    x->permanent = s->code >= 500;
    snprintf(s->last, sizeof s->last, "SMTP %ld from %s (%.250s)", s->code, s->origin, detail);
    return !x->permanent;
  }
  detail = s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->rc);
  switch (s->rc) {
    case CURLE_USE_SSL_FAILED:
      snprintf(s->last, sizeof s->last,
               "%s does not offer STARTTLS, which the channel requires (settings.starttls, or credentials)",
               s->origin);
      return false;
    case CURLE_LOGIN_DENIED:
    case CURLE_AUTH_ERROR:
      snprintf(s->last, sizeof s->last, "%s refused the credentials (settings.username, password_secret)",
               s->origin);
      return false;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      snprintf(s->last, sizeof s->last, "TLS with %s: %.300s", s->origin, detail);
      return false;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      snprintf(s->last, sizeof s->last, "settings.smtp_url: %.300s", detail);
      return false;
    default:
      break;
  }
  x->permanent = false;
  if (s->rc == CURLE_OPERATION_TIMEDOUT) {
    x->err = RM_ETIMEOUT;
    snprintf(s->last, sizeof s->last, "no answer from %s within %u ms", s->origin, s->timeout_ms);
  } else if (s->rc == CURLE_COULDNT_CONNECT) {
    snprintf(s->last, sizeof s->last, "could not connect to %s", s->origin);
  } else if (s->rc == CURLE_COULDNT_RESOLVE_HOST) {
    snprintf(s->last, sizeof s->last, "could not resolve the host of %s", s->origin);
  } else {
    snprintf(s->last, sizeof s->last, "%s: %.300s", s->origin, detail);
  }
  return true;
}

static void smtp_after(uv_work_t *w, int status) {
  rm__notify_smtp *s = container_of(w, rm__notify_smtp, work);
  rm__notify_send *x = s->x;
  rm_notifier *n = x->n;
  s->running = false;
  n->smtp_running--;
  if (status == UV_ECANCELED || atomic_load(&s->abort)) {
    if (status == UV_ECANCELED) x->attempts--;
    else s->cut = true;
    rm__notify_finish(x, true);
    return;
  }
  bool again = judge(x);
  run_waiting(n);
  if (!again || x->attempts >= s->max_attempts) {
    if (!x->delivered)
      snprintf(x->error, sizeof x->error, x->permanent ? "%s, not retried" : "%s after %u attempt%s", s->last,
               x->attempts, x->attempts == 1 ? "" : "s");
    rm__notify_finish(x, false);
    return;
  }
  uint32_t rnd = 0;
  rm_random_bytes(&rnd, sizeof rnd); /* without randomness: no jitter */
  uint64_t delay = rm_webhook_backoff_ms(s->backoff_ms, s->max_delay_ms, x->attempts, rnd);
  rm__notify_scrub(x, s->last, sizeof s->last);
  rm_log_info("notify", "email %s: %s (attempt %u of %u), retrying in %" PRIu64 " ms", x->id, s->last,
              x->attempts, s->max_attempts, delay);
  uv_timer_start(&x->timer, on_retry, delay, 0);
}

bool rm__notify_email_abort(rm__notify_send *x) {
  rm__notify_smtp *s = x->smtp;
  if (!s || !s->running) return false;
  atomic_store(&s->abort, 1);
  uv_cancel((uv_req_t *)&s->work); /* fails once a thread has it: then the flag stops it */
  uv_mutex_lock(&s->lock);
  for (size_t i = 0; i < SOCKS_MAX; i++)
    if (s->socks[i] != CURL_SOCKET_BAD) shutdown(s->socks[i], SHUT_RDWR);
  uv_mutex_unlock(&s->lock);
  return true;
}

void rm__notify_email_cancelled(rm__notify_send *x) {
  rm__notify_smtp *s = x->smtp;
  if (s->cut)
    snprintf(x->error, sizeof x->error, "cancelled: the notifier closed during attempt %u to %s", x->attempts,
             s->origin);
  else if (s->last[0])
    snprintf(x->error, sizeof x->error, "cancelled: the notifier closed after %u attempt%s (last: %s)",
             x->attempts, x->attempts == 1 ? "" : "s", s->last);
  else
    snprintf(x->error, sizeof x->error, "cancelled: the notifier closed before the first attempt to %s",
             s->origin);
}

void rm__notify_email_free(rm__notify_send *x) {
  rm__notify_smtp *s = x->smtp;
  if (!s) return;
  uv_mutex_destroy(&s->lock);
  rm__notify_wipe(s->pass);
  free(s->user);
  free(s->url);
  free(s->from);
  free(s->msg);
  curl_slist_free_all(s->rcpt);
  free(s);
  x->smtp = NULL;
}

/* ---- a new send ------------------------------------------------------------- */

/* An address the envelope and the headers can carry as it is: ASCII
 * (no SMTPUTF8), one "@", nothing that would end or split a field. */
static bool address_ok(const char *a) {
  const char *at = strchr(a, '@');
  if (!at || at == a || !at[1] || strchr(at + 1, '@') || strlen(a) > 254) return false;
  for (; *a; a++)
    if ((unsigned char)*a <= ' ' || (unsigned char)*a >= 0x7f || strchr("<>,;:\"()[]\\", *a)) return false;
  return true;
}

/* Fills s->origin with "host:port" from the URL; false when it is not
 * an smtp:// or smtps:// URL with a host. */
static bool smtp_origin(rm__notify_smtp *s, const char *url, bool *implicit_tls) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            (strcmp(scheme, "smtp") == 0 || strcmp(scheme, "smtps") == 0) &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
  if (ok) {
    snprintf(s->origin, sizeof s->origin, "%s:%s", host, port);
    *implicit_tls = strcmp(scheme, "smtps") == 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return ok;
}

/* The envelope and the credentials from the settings. */
static int read_settings(rm__notify_send *x, rm__notify_smtp *s, const json_t *settings) {
  const char *url = json_string_value(json_object_get(settings, "smtp_url"));
  const char *from = json_string_value(json_object_get(settings, "from"));
  const char *user = json_string_value(json_object_get(settings, "username"));
  const json_t *to = json_object_get(settings, "to"), *v;
  bool implicit_tls = false;
  if (!url || !smtp_origin(s, url, &implicit_tls))
    return rm__notify_fail(x, RM_EINVAL, "settings.smtp_url: must be an smtp:// or smtps:// URL with a host");
  if (!from || !address_ok(from))
    return rm__notify_fail(x, RM_EINVAL, "settings.from: must be an ASCII e-mail address");
  if (!json_array_size(to)) return rm__notify_fail(x, RM_EINVAL, "settings.to: must list at least one address");
  size_t i;
  json_array_foreach(to, i, v) {
    const char *a = json_string_value(v);
    if (!a || !address_ok(a))
      return rm__notify_fail(x, RM_EINVAL, "settings.to[%zu]: must be an ASCII e-mail address", i);
    char line[300];
    snprintf(line, sizeof line, "<%s>", a);
    struct curl_slist *l = curl_slist_append(s->rcpt, line);
    if (!l) return rm__notify_fail(x, RM_ENOMEM, "out of memory");
    s->rcpt = l;
  }
  if (!(s->url = strdup(url)) || !(s->from = strdup(from)) || (user && !(s->user = strdup(user))))
    return rm__notify_fail(x, RM_ENOMEM, "out of memory");
  if (json_object_get(settings, "password_secret")) {
    if (!(s->pass = rm__notify_secret(x, settings, "password_secret", NULL))) return x->err;
    if (!user) return rm__notify_fail(x, RM_EINVAL, "settings.username: required with password_secret");
  }
  s->use_ssl = implicit_tls || s->user || json_is_true(json_object_get(settings, "starttls")) ? CURLUSESSL_ALL
                                                                                             : CURLUSESSL_TRY;
  return 0;
}

/* The subject and body, from the templates or the default layout. */
static int compose(rm__notify_send *x, rm__notify_smtp *s, const json_t *settings, const json_t *ctx) {
  const char *st = json_string_value(json_object_get(settings, "subject"));
  const char *bt = json_string_value(json_object_get(settings, "body"));
  char *subject = st ? rm_notify_render_text(st, ctx, RM_NOTIFY_ESC_NONE)
                     : rm_notify_default_title(ctx, RM_NOTIFY_ESC_NONE);
  char *body = bt ? rm_notify_render_text(bt, ctx, RM_NOTIFY_ESC_NONE)
                  : rm_notify_default_body(ctx, RM_NOTIFY_ESC_NONE);
  rm_buf text = RM_BUF_INIT, mid = RM_BUF_INIT;
  int rc = subject && body ? rm_buf_puts(&text, body) : RM_ENOMEM;
  if (!rc && !bt) rc = rm_buf_printf(&text, "%s-- \nRestMon, channel %s\n", text.len ? "\n\n" : "", x->channel);
  if (!rc) rc = rm_buf_printf(&mid, "<%s@%s>", x->id, strchr(s->from, '@') + 1);
  if (!rc) {
    size_t nto = 0;
    const char *to[64];
    const json_t *v;
    json_array_foreach(json_object_get(settings, "to"), nto, v) {
      if (nto == 64) break; /* the header names the first 64; the envelope has all */
      to[nto] = json_string_value(v); /* checked by read_settings */
    }
    rm__mime_msg m = {.from = s->from, .to = to, .nto = nto, .subject = subject, .body = text.data ? text.data : "",
                      .message_id = mid.data, .date = time(NULL)};
    s->msg = rm__notify_mime_build(&m, &s->msg_len);
    if (!s->msg) rc = RM_ENOMEM;
  }
  free(subject);
  free(body);
  rm_buf_free(&text);
  rm_buf_free(&mid);
  return rc ? rm__notify_fail(x, RM_ENOMEM, "out of memory") : 0;
}

int rm__notify_email_start(rm__notify_send *x, const json_t *settings, const json_t *ctx) {
  rm__notify_smtp *s = calloc(1, sizeof *s);
  if (!s) return rm__notify_fail(x, RM_ENOMEM, "out of memory");
  if (uv_mutex_init(&s->lock)) {
    free(s);
    return rm__notify_fail(x, RM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < SOCKS_MAX; i++) s->socks[i] = CURL_SOCKET_BAD;
  x->smtp = s;
  s->x = x;
  const rm_notify_opts *o = &x->n->opts;
  s->max_attempts = x->max_attempts;
  s->backoff_ms = o->backoff_ms ? o->backoff_ms : RM_WEBHOOK_DEFAULT_BACKOFF_MS;
  s->max_delay_ms = o->max_delay_ms ? o->max_delay_ms : RM_WEBHOOK_DEFAULT_MAX_DELAY_MS;
  s->timeout_ms = o->smtp_timeout_ms;
  int rc = read_settings(x, s, settings);
  if (!rc) rc = compose(x, s, settings, ctx);
  if (rc) return rc;
  enqueue(x);
  return 0;
}
