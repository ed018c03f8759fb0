/* Notification channels (core/notify) against real receivers.
 *
 * Email goes to a real SMTP server: aiosmtpd (Debian's python3-aiosmtpd),
 * started per test by /usr/bin/python3 with the small sink below on an
 * ephemeral 127.0.0.1 port. The sink stores each message it accepts as
 * JSON (envelope, the login, whether TLS was on, and the message parsed by
 * Python's email package: decoded subject and body, headers, defects), and
 * can refuse "reject*" recipients (550), answer 451 to the first N DATA
 * commands, stall DATA, and require STARTTLS (a self-signed certificate
 * made with openssl for the run, trusted through smtp_ca_file) and AUTH.
 *
 * Telegram, Discord, Slack (the channel plugins of plugins/, run by a real
 * Lua host) and webhook channels post to the project's HTTP server
 * (core/api) on an ephemeral port in the test's loop, which records each
 * request and answers from a script. Secrets come from a real vault set
 * (secret/secret.h). Each test runs its loop until every send has
 * reported and the notifier, client and server are closed, then checks
 * what the receivers saw and what the callbacks said. Backoffs are a few
 * milliseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "api/request.h"
#include "api/response.h"
#include "api/server.h"
#include "http/client.h"
#include "lua/host.h"
#include "notify/notify.h"
#include "notify/notify_internal.h"
#include "secret/secret.h"
#include "util/err.h"
#include "util/log.h"

extern char **environ;

#define PYTHON "/usr/bin/python3"
#define SMTP_PASSWORD "pw-S3cr3t-9f1c"
#define BOT_TOKEN "123456:AAH-t0ken_Xq"
#define API_TOKEN "tok-7Yq2-header"
#define HOOK_KEY "whsec-notify-4e1"
#define MAX_HITS 16
#define MAX_OUTS 16
#define SETTLE_MS 100

/* ---- the SMTP sink -------------------------------------------------------- */

static const char sink_py[] =
    "import asyncio, email, email.policy, json, os, ssl, sys\n"
    "from aiosmtpd.smtp import SMTP, AuthResult\n"
    "cfg = json.loads(sys.argv[1])\n"
    "state = {'n': 0, 'data': 0}\n"
    "class Handler:\n"
    "    async def handle_RCPT(self, server, session, envelope, address, options):\n"
    "        if address.startswith('reject'):\n"
    "            return '550 5.1.1 <%s>: no such user' % address\n"
    "        envelope.rcpt_tos.append(address)\n"
    "        return '250 OK'\n"
    "    async def handle_DATA(self, server, session, envelope):\n"
    "        state['data'] += 1\n"
    "        open(os.path.join(cfg['dir'], 'data.started'), 'w').close()\n"
    "        await asyncio.sleep(cfg.get('delay', 0))\n"
    "        if state['data'] <= cfg.get('tempfail', 0):\n"
    "            return '451 4.3.0 try again later'\n"
    "        raw = envelope.original_content or envelope.content\n"
    "        msg = email.message_from_bytes(raw, policy=email.policy.default)\n"
    "        defects = [repr(d) for d in msg.defects]\n"
    "        defects += [repr(d) for v in msg.values() for d in getattr(v, 'defects', ())]\n"
    "        state['n'] += 1\n"
    "        rec = {'mail_from': envelope.mail_from, 'rcpt_tos': envelope.rcpt_tos,\n"
    "               'login': session.auth_data if isinstance(session.auth_data, str) else None,\n"
    "               'tls': session.ssl is not None, 'data_calls': state['data'],\n"
    "               'subject': str(msg['subject']),\n"
    "               'body': msg.get_content().replace('\\r\\n', '\\n'),\n"
    "               'headers': {k: str(v) for k, v in msg.items()},\n"
    "               'raw': raw.decode('ascii', 'replace'), 'defects': defects}\n"
    "        path = os.path.join(cfg['dir'], '%d.json' % state['n'])\n"
    "        with open(path + '.tmp', 'w') as f:\n"
    "            json.dump(rec, f)\n"
    "        os.rename(path + '.tmp', path)\n"
    "        return '250 2.0.0 queued as %d' % state['n']\n"
    "def authenticator(server, session, envelope, mechanism, data):\n"
    "    login = data.login.decode()\n"
    "    ok = login == cfg['user'] and data.password.decode() == cfg['password']\n"
    "    return AuthResult(success=ok, handled=False, auth_data=login if ok else None)\n"
    "kw = {'hostname': 'sink.test'}\n"
    "if cfg.get('cert'):\n"
    "    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)\n"
    "    tls.load_cert_chain(cfg['cert'], cfg['key'])\n"
    "    kw.update(tls_context=tls, require_starttls=True)\n"
    "if cfg.get('user'):\n"
    "    kw.update(authenticator=authenticator, auth_required=True)\n"
    "loop = asyncio.new_event_loop()\n"
    "asyncio.set_event_loop(loop)\n"
    "srv = loop.run_until_complete(loop.create_server(\n"
    "    lambda: SMTP(Handler(), loop=loop, **kw), '127.0.0.1', 0))\n"
    "print('PORT', srv.sockets[0].getsockname()[1], flush=True)\n"
    "loop.run_forever()\n";

/* The run's scratch folder, its self-signed certificate for 127.0.0.1,
 * and a plugin folder with channel plugins made for the tests. */
static char g_dir[64], g_cert[96], g_key[96], g_plugins[96];

/* verdicts: answers as settings.mode says; looper: never ends; sleeper:
 * waits a minute. */
static const char *const test_plugins[][3] = {
    {"verdicts",
     "{\"name\": \"verdicts\", \"kind\": \"channel\", \"fields\": [{\"name\": \"mode\", \"type\": \"text\", "
     "\"default\": \"deliver\"}, {\"name\": \"room\", \"type\": \"text\", \"required\": true}, {\"name\": \"key\", "
     "\"type\": \"password\"}]}",
     "local p = {}\n"
     "function p.send(ctx)\n"
     "  local s = ctx.settings\n"
     "  if s.mode == 'retry' and ctx.attempt == 1 then return {retry = true, error = 'busy', retry_after_ms = 40} end\n"
     "  if s.mode == 'refuse' then return {error = 'no room ' .. s.room} end\n"
     "  if s.mode == 'raise' then error('boom') end\n"
     "  if s.mode == 'coded' then return nil, 'E_INVALID: settings.room: unknown' end\n"
     "  if s.mode == 'show' then return {error = 'key is ' .. s.key} end\n"
     "  if s.mode == 'odd' then return 42 end\n"
     "  return true\n"
     "end\n"
     "return p\n"},
    {"looper", "{\"name\": \"looper\", \"kind\": \"channel\"}",
     "return {send = function() while true do end end}\n"},
    {"sleeper", "{\"name\": \"sleeper\", \"kind\": \"channel\"}",
     "return {send = function() sleep(60000) return true end}\n"},
};

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void make_test_plugins(void) {
  snprintf(g_plugins, sizeof g_plugins, "%s/plugins", g_dir);
  assert_int_equal(mkdir(g_plugins, 0700), 0);
  for (size_t i = 0; i < sizeof test_plugins / sizeof test_plugins[0]; i++) {
    char d[160], f[200];
    snprintf(d, sizeof d, "%s/%s", g_plugins, test_plugins[i][0]);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(f, sizeof f, "%s/manifest.json", d);
    write_text(f, test_plugins[i][1]);
    snprintf(f, sizeof f, "%s/plugin.lua", d);
    write_text(f, test_plugins[i][2]);
  }
}

static int run_quiet(char *const argv[]) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  int st = 0;
  if (rc == 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  return -1;
}

static int group_setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/restmon-notify.XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  snprintf(g_cert, sizeof g_cert, "%s/cert.pem", g_dir);
  snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
  char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", g_key, "-out", g_cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                  "-addext", "subjectAltName=IP:127.0.0.1", NULL};
  if (run_quiet(argv)) {
    fprintf(stderr, "test_notify: openssl could not make a test certificate\n");
    return -1;
  }
  make_test_plugins();
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  char *argv[] = {"rm", "-rf", g_dir, NULL};
  return run_quiet(argv);
}

typedef struct sink {
  pid_t pid;
  int port;
  char dir[128];
} sink;

/* Starts the sink with the JSON options cfg (its "dir" is added). */
static void sink_start(sink *k, json_t *cfg) {
  static int seq;
  snprintf(k->dir, sizeof k->dir, "%s/sink%d", g_dir, ++seq);
  assert_int_equal(mkdir(k->dir, 0700), 0);
  json_object_set_new(cfg, "dir", json_string(k->dir));
  char *arg = json_dumps(cfg, JSON_COMPACT), log[160];
  json_decref(cfg);
  snprintf(log, sizeof log, "%s/sink.log", k->dir);
  int out[2];
  assert_int_equal(pipe(out), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  char *argv[] = {PYTHON, "-c", (char *)sink_py, arg, NULL};
  assert_int_equal(posix_spawn(&k->pid, PYTHON, &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  free(arg);
  close(out[1]);
  char line[64] = "";
  size_t n = 0;
  struct pollfd p = {.fd = out[0], .events = POLLIN};
  while (n < sizeof line - 1 && !strchr(line, '\n') && poll(&p, 1, 15000) == 1) {
    ssize_t r = read(out[0], line + n, sizeof line - 1 - n);
    if (r <= 0) break;
    line[n += (size_t)r] = '\0';
  }
  close(out[0]);
  if (sscanf(line, "PORT %d", &k->port) != 1) {
    fprintf(stderr, "test_notify: the SMTP sink did not start (is python3-aiosmtpd installed? "
                    "scripts/install-deps); its log: %s\n", log);
    fail();
  }
}

static void sink_stop(sink *k) {
  if (k->pid <= 0) return;
  kill(k->pid, SIGTERM);
  waitpid(k->pid, NULL, 0);
  k->pid = 0;
}

/* Message n (1-based) the sink accepted, or NULL. */
static json_t *sink_mail(const sink *k, int n) {
  char path[192];
  snprintf(path, sizeof path, "%s/%d.json", k->dir, n);
  return json_load_file(path, 0, NULL);
}

/* ---- fixture -------------------------------------------------------------- */

typedef struct hit {
  char path[160], sig[128], ts[32], auth[96], custom[32], event_id[160];
  json_t *body;
  uint64_t at;
} hit;

typedef struct out {
  bool delivered, permanent, cancelled, in_call;
  unsigned attempts;
  long status;
  int err;
  char error[800], type[16], channel[64], id[160];
  uint64_t at;
} out;

typedef struct fx {
  uv_loop_t loop;
  rm_api_server srv;
  rm_http_client http;
  rm_lua_host host;
  rm_notifier n;
  rm_secrets *sec;
  sink smtp;
  uv_timer_t tick;
  unsigned ticks;
  int port;
  char base[64];
  int script[8]; /* statuses the receiver answers, in order; then 200 */
  size_t nscript;
  const char *answer; /* body of a non-200 answer */
  hit hits[MAX_HITS];
  size_t nhits;
  out outs[MAX_OUTS];
  size_t nouts, expect;
  bool in_send, closed, stopped, loop_closed, ticking, manual_close;
  uint64_t closed_at;
} fx;

static void on_receive(rm_api_req *r, void *ud) {
  fx *f = ud;
  assert_true(f->nhits < MAX_HITS);
  hit *h = &f->hits[f->nhits];
  size_t n;
  const char *body = rm_api_req_body(r, &n);
  h->body = json_loadb(body, n, 0, NULL);
  h->at = uv_now(&f->loop);
  snprintf(h->path, sizeof h->path, "%s", rm_api_req_path(r));
  const char *v;
  v = rm_api_req_header(r, "x-restmon-signature"), snprintf(h->sig, sizeof h->sig, "%s", v ? v : "");
  v = rm_api_req_header(r, "x-restmon-timestamp"), snprintf(h->ts, sizeof h->ts, "%s", v ? v : "");
  v = rm_api_req_header(r, "x-restmon-event-id"), snprintf(h->event_id, sizeof h->event_id, "%s", v ? v : "");
  v = rm_api_req_header(r, "authorization"), snprintf(h->auth, sizeof h->auth, "%s", v ? v : "");
  v = rm_api_req_header(r, "x-custom"), snprintf(h->custom, sizeof h->custom, "%s", v ? v : "");
  size_t i = f->nhits++;
  int status = i < f->nscript ? f->script[i] : 200;
  const char *answer = status == 200 ? "{\"ok\":true}" : f->answer ? f->answer : "{}";
  rm_api_respond_raw(r, status, "application/json", answer, strlen(answer));
}

static void on_stopped(rm_api_server *s, int status) {
  (void)status;
  fx *f = (fx *)((char *)s - offsetof(fx, srv));
  f->stopped = true;
}

static void on_http_closed(rm_http_client *c) {
  fx *f = (fx *)((char *)c - offsetof(fx, http));
  rm_api_server_stop(&f->srv, 100, on_stopped);
}

static void on_notifier_closed(rm_notifier *n) {
  fx *f = (fx *)((char *)n - offsetof(fx, n));
  f->closed = true;
  assert_int_equal(n->active, 0);
  if (f->ticking) uv_close((uv_handle_t *)&f->tick, NULL);
  rm_lua_host_close(&f->host);
  rm_http_client_close(&f->http, on_http_closed);
}

static void on_done(const rm_notify_outcome *o, void *ud) {
  fx *f = ud;
  assert_true(f->nouts < MAX_OUTS);
  out *x = &f->outs[f->nouts++];
  x->delivered = o->delivered;
  x->permanent = o->permanent;
  x->cancelled = o->cancelled;
  x->in_call = f->in_send;
  x->attempts = o->attempts;
  x->status = o->status;
  x->err = o->err;
  x->at = uv_now(&f->loop);
  snprintf(x->error, sizeof x->error, "%s", o->error);
  snprintf(x->type, sizeof x->type, "%s", o->type);
  snprintf(x->channel, sizeof x->channel, "%s", o->channel);
  snprintf(x->id, sizeof x->id, "%s", o->id);
  json_t *j = rm_notify_outcome_json(o); /* every outcome is valid JSON (UTF-8) */
  assert_non_null(j);
  json_decref(j);
  if (f->nouts == f->expect && !f->manual_close && !f->n.closing) rm_notify_close(&f->n, on_notifier_closed);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->sec = rm_secrets_new();
  char err[128];
  assert_int_equal(rm_secrets_set(f->sec, "SMTP_PASSWORD", SMTP_PASSWORD, err, sizeof err), 0);
  assert_int_equal(rm_secrets_set(f->sec, "TG_TOKEN", BOT_TOKEN, err, sizeof err), 0);
  assert_int_equal(rm_secrets_set(f->sec, "API_TOKEN", API_TOKEN, err, sizeof err), 0);
  assert_int_equal(rm_secrets_set(f->sec, "HOOK_KEY", HOOK_KEY, err, sizeof err), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  sink_stop(&f->smtp);
  if (!f->loop_closed) uv_loop_close(&f->loop);
  for (size_t i = 0; i < f->nhits; i++) json_decref(f->hits[i].body);
  rm_secrets_free(f->sec);
  free(f);
  return 0;
}

/* Starts the receiver, the client and a notifier with fast retries. */
static void start(fx *f, rm_notify_opts *o) {
  rm_api_server_opts so = {.host = "127.0.0.1"};
  assert_int_equal(rm_api_server_init(&f->srv, &f->loop, &so), 0);
  assert_int_equal(rm_api_server_route(&f->srv, "POST", "/{bot}/sendMessage", on_receive, f), 0);
  assert_int_equal(rm_api_server_route(&f->srv, "POST", "/hooks/{a}/{b}", on_receive, f), 0);
  assert_int_equal(rm_api_server_route(&f->srv, "POST", "/hook", on_receive, f), 0);
  assert_int_equal(rm_api_server_start(&f->srv), 0);
  f->port = rm_api_server_port(&f->srv);
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
  assert_int_equal(rm_http_client_init(&f->http, &f->loop), 0);
  char err[300];
  rm_lua_limits lim = {.cpu_instructions = 2000000}; /* the looper ends soon */
  assert_int_equal(rm_lua_host_init(&f->host, &f->loop, &f->http, &lim, g_plugins, err, sizeof err), 0);
  rm_notify_opts def = {0};
  if (!o) o = &def;
  o->secret = rm_notify_vault_secret;
  o->secret_ud = f->sec;
  if (!o->backoff_ms) o->backoff_ms = 5;
  if (!o->max_attempts) o->max_attempts = 3;
  if (!o->smtp_ca_file) o->smtp_ca_file = g_cert;
  o->lua = &f->host;
  assert_int_equal(rm_notify_init(&f->n, &f->http, o), 0);
}

static void send_ok(fx *f, json_t *channel, json_t *msg) {
  f->in_send = true;
  assert_int_equal(rm_notify_send(&f->n, channel, msg, on_done, f), 0);
  f->in_send = false;
  f->expect++;
  json_decref(channel);
  json_decref(msg);
}

/* Runs the loop to the end; asserts everything closed. */
static void finish(fx *f) {
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_true(f->closed);
  assert_true(f->stopped);
  assert_int_equal(f->nouts, f->expect);
  for (size_t i = 0; i < f->nouts; i++) assert_false(f->outs[i].in_call);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  f->loop_closed = true;
}

static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* The message of a failed run, as the server would send it. */
static json_t *run_message(void) {
  return json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:i}, s:{s:s, s:{s:s, s:s, s:s, s:i}}}", "id", "run-42.failed",
                   "title", "Checkout down", "text", "Payment API answered 503 three times", "severity",
                   "critical", "fields", "host", "db-1", "retries", 3, "event", "event", "run.failed", "run",
                   "run_id", "r-42", "workflow_name", "checkout", "status", "failed", "duration_ms", 1234);
}

static json_t *email_channel(const sink *k, const char *extra_json) {
  char url[64];
  snprintf(url, sizeof url, "smtp://127.0.0.1:%d", k ? k->port : closed_port());
  json_t *c = json_pack("{s:s, s:s, s:{s:s, s:s, s:[s, s]}}", "name", "ops-mail", "type", "email", "settings",
                        "smtp_url", url, "from", "restmon@example.com", "to", "ops@example.com",
                        "oncall@example.org");
  if (extra_json) {
    json_t *x = json_loads(extra_json, 0, NULL);
    assert_non_null(x);
    json_object_update(json_object_get(c, "settings"), x);
    json_decref(x);
  }
  return c;
}

static void assert_no_secret(const char *s) {
  static const char *const secrets[] = {SMTP_PASSWORD, BOT_TOKEN, API_TOKEN, HOOK_KEY, "T0KEN", NULL};
  for (size_t i = 0; secrets[i]; i++)
    if (strstr(s, secrets[i])) fail_msg("a secret in \"%s\"", s);
}

static const char *jstr(const json_t *o, const char *path) {
  char p[128];
  snprintf(p, sizeof p, "%s", path);
  const json_t *v = o;
  for (char *save = NULL, *k = strtok_r(p, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
    v = json_is_array(v) ? json_array_get(v, (size_t)atoi(k)) : json_object_get(v, k);
  return json_string_value(v);
}

/* ---- templates, layout, MIME (no network) ---------------------------------- */

static void test_templates_resolve_paths_keep_types_and_blank_missing_values(void **state) {
  (void)state;
  json_t *ctx = json_pack("{s:s, s:{s:{s:s, s:i, s:[s, s]}}, s:{s:s}}", "title", "T", "event", "run", "status",
                          "failed", "duration_ms", 1234, "tags", "a", "b", "fields", "host", "db1");
  char *t = rm_notify_render_text(
      "{{event.run.status}} in {{ event.run.duration_ms }}ms on {{fields.host}}{{nope.x}}{{event..x}} "
      "\\{{x}} {{event.run.tags}} {{event.run.tags[1]}} {{event.run.tags[9]}}|{{unclosed",
      ctx, RM_NOTIFY_ESC_NONE);
  assert_string_equal(t, "failed in 1234ms on db1 {{x}} [\"a\",\"b\"] b |{{unclosed");
  free(t);
  json_t *tmpl = json_pack("{s:s, s:s, s:s, s:s, s:[s, i], s:b}", "s", "{{event.run.status}}", "n",
                           "{{ event.run.duration_ms }}", "m", "{{missing}}", "t", "x {{event.run.duration_ms}}",
                           "arr", "{{title}}", 1, "b", 1);
  json_t *r = rm_notify_render_json(tmpl, ctx);
  json_t *want = json_pack("{s:s, s:i, s:n, s:s, s:[s, i], s:b}", "s", "failed", "n", 1234, "m", "t", "x 1234",
                           "arr", "T", 1, "b", 1);
  assert_true(json_equal(r, want));
  json_decref(r);
  json_decref(want);
  json_decref(tmpl);
  json_decref(ctx);
}

static void test_escapes_make_values_plain_text_in_each_markup(void **state) {
  (void)state;
  const struct {
    enum rm_notify_escape esc;
    const char *want;
  } cases[] = {{RM_NOTIFY_ESC_NONE, "<b>a_b.c & d!</b>"},
               {RM_NOTIFY_ESC_HTML, "&lt;b&gt;a_b.c &amp; d!&lt;/b&gt;"},
               {RM_NOTIFY_ESC_MARKDOWNV2, "<b\\>a\\_b\\.c & d\\!</b\\>"},
               {RM_NOTIFY_ESC_MARKDOWN, "<b>a\\_b.c & d!</b>"},
               {RM_NOTIFY_ESC_SLACK, "&lt;b&gt;a_b.c &amp; d!&lt;/b&gt;"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rm_buf b = RM_BUF_INIT;
    assert_int_equal(rm_notify_escape_text(&b, "<b>a_b.c & d!</b>", cases[i].esc), 0);
    assert_string_equal(b.data, cases[i].want);
    rm_buf_free(&b);
  }
  char *c = rm_notify_cut("h\xc3\xa9llo w\xc3\xb6rld", 6);
  assert_string_equal(c, "h\xc3\xa9\xe2\x80\xa6");
  free(c);
  c = rm_notify_cut("h\xc3\xa9llo w\xc3\xb6rld", 5); /* not half of "é" */
  assert_string_equal(c, "h\xe2\x80\xa6");
  free(c);
  c = rm_notify_cut("a &amp; b &lt;&lt;", 15);
  assert_string_equal(c, "a &amp; b \xe2\x80\xa6"); /* never half an entity */
  free(c);
}

/* Decodes quoted-printable (RFC 2045) as a receiver would. */
static char *qp_decode(const char *s) {
  char *o = malloc(strlen(s) + 1), *w = o;
  while (*s) {
    if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') s += 3;
    else if (s[0] == '=') {
      char hex[3] = {s[1], s[2], 0};
      *w++ = (char)strtol(hex, NULL, 16);
      s += 3;
    } else if (s[0] == '\r' && s[1] == '\n') *w++ = '\n', s += 2;
    else *w++ = *s++;
  }
  *w = '\0';
  return o;
}

static void test_mime_message_has_crlf_lines_encoded_subject_and_qp_body(void **state) {
  (void)state;
  char body[600];
  snprintf(body, sizeof body,
           "Zeile mit Umlauten: \xc3\xa4\xc3\xb6\xc3\xbc and an equals sign = here, long enough to need a soft "
           "break somewhere past column seventy-six.\ntrailing spaces   \n.leading dot\n\nend");
  const char *to[] = {"a-very-long-recipient-address@example.com", "second.long.address@example.org",
                      "third@example.net"};
  const char *subject = "\xc3\x89" "chec \xe2\x9c\x97 checkout: Zahlungsdienst antwortet nicht, "
                        "dritter Versuch \xe2\x80\x94 \xe6\xbc\xa2\xe5\xad\x97";
  rm__mime_msg m = {.from = "restmon@example.com", .to = to, .nto = 3, .subject = subject, .body = body,
                    .message_id = "<run-42@example.com>", .date = 1700000000};
  size_t len = 0;
  char *msg = rm__notify_mime_build(&m, &len);
  assert_non_null(msg);
  assert_int_equal(strlen(msg), len);
  assert_non_null(strstr(msg, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
  assert_non_null(strstr(msg, "From: restmon@example.com\r\n"));
  assert_non_null(strstr(msg, "\r\nTo: a-very-long-recipient-address@example.com,\r\n second.long.address@example.org, "
                              "third@example.net\r\n"));
  assert_non_null(strstr(msg, "\r\nMessage-ID: <run-42@example.com>\r\nMIME-Version: 1.0\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: quoted-printable\r\n"));
  /* every line ends in CRLF, none is longer than 76 (78 for headers) */
  const char *hdr_end = strstr(msg, "\r\n\r\n");
  assert_non_null(hdr_end);
  for (const char *p = msg; *p;) {
    const char *e = strstr(p, "\r\n");
    assert_non_null(e);
    assert_true(e - p <= (p < hdr_end ? 78 : 76));
    assert_null(memchr(p, '\n', (size_t)(e - p)));
    for (const char *c = p; c < e; c++) assert_true((unsigned char)*c < 0x80);
    p = e + 2;
  }
  /* the subject: encoded words that decode to the UTF-8 text */
  const char *s = strstr(msg, "\r\nSubject: ") + 11;
  char decoded[300] = "";
  while (strncmp(s, "=?UTF-8?B?", 10) == 0) {
    s += 10;
    const char *e = strstr(s, "?=");
    unsigned char raw[80];
    int n = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)(e - s));
    while (n > 0 && e[-1] == '=') n--, e--; /* EVP_DecodeBlock counts padding */
    strncat(decoded, (char *)raw, (size_t)n);
    s = strstr(s, "?=") + 2;
    if (strncmp(s, "\r\n ", 3) == 0) s += 3;
  }
  assert_string_equal(decoded, subject);
  /* the body round-trips through quoted-printable */
  char *text = qp_decode(hdr_end + 4);
  char want[620];
  snprintf(want, sizeof want, "%s\n", body);
  assert_string_equal(text, want);
  assert_non_null(strstr(hdr_end, "spaces  =20\r\n")); /* trailing space made visible */
  free(text);
  free(msg);
  /* a plain ASCII subject is folded at a space, not encoded; CR/LF cannot add a header */
  rm_buf b = RM_BUF_INIT;
  assert_int_equal(rm__notify_subject_append(&b, "a\r\nBcc: evil@example.com"), 0);
  assert_string_equal(b.data, "Subject: a  Bcc: evil@example.com\r\n");
  rm_buf_free(&b);
}

/* ---- email against the SMTP sink --------------------------------------------- */

static void test_email_arrives_with_mapped_utf8_subject_and_body(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_object());
  start(f, NULL);
  send_ok(f,
          email_channel(&f->smtp, "{\"subject\": \"{{severity}}: {{event.run.workflow_name}} "
                                  "{{event.run.status}} \\u2717 \\u00dcberwachung\", \"body\": \"Run "
                                  "{{event.run.run_id}} ended {{event.run.status}} after {{event.run.duration_ms}} "
                                  "ms.\\nHost: {{fields.host}} \\u2014 caf\\u00e9\\n\"}"),
          run_message());
  finish(f);
  const out *o = &f->outs[0];
  assert_true(o->delivered);
  assert_int_equal(o->attempts, 1);
  assert_int_equal(o->status, 250);
  assert_string_equal(o->error, "");
  assert_string_equal(o->type, "email");
  assert_string_equal(o->channel, "ops-mail");
  assert_string_equal(o->id, "run-42.failed");
  json_t *m = sink_mail(&f->smtp, 1);
  assert_non_null(m);
  assert_string_equal(jstr(m, "mail_from"), "restmon@example.com");
  assert_string_equal(jstr(m, "rcpt_tos.0"), "ops@example.com");
  assert_string_equal(jstr(m, "rcpt_tos.1"), "oncall@example.org");
  assert_string_equal(jstr(m, "subject"), "critical: checkout failed \xe2\x9c\x97 \xc3\x9c" "berwachung");
  assert_string_equal(jstr(m, "body"), "Run r-42 ended failed after 1234 ms.\nHost: db-1 \xe2\x80\x94 caf\xc3\xa9\n");
  assert_string_equal(jstr(m, "headers.From"), "restmon@example.com");
  assert_non_null(strstr(jstr(m, "raw"), "\r\nTo: ops@example.com, oncall@example.org\r\n"));
  assert_string_equal(jstr(m, "headers.Message-ID"), "<run-42.failed@example.com>");
  assert_string_equal(jstr(m, "headers.MIME-Version"), "1.0");
  assert_string_equal(jstr(m, "headers.Content-Type"), "text/plain; charset=\"utf-8\"");
  assert_string_equal(jstr(m, "headers.Content-Transfer-Encoding"), "quoted-printable");
  assert_non_null(jstr(m, "headers.Date"));
  assert_int_equal(json_array_size(json_object_get(m, "defects")), 0);
  assert_false(json_is_true(json_object_get(m, "tls"))); /* this sink offers no STARTTLS */
  json_decref(m);
}

static void test_email_default_layout_without_templates(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_object());
  start(f, NULL);
  send_ok(f, email_channel(&f->smtp, NULL), run_message());
  finish(f);
  assert_true(f->outs[0].delivered);
  json_t *m = sink_mail(&f->smtp, 1);
  assert_non_null(m);
  assert_string_equal(jstr(m, "subject"), "[critical] Checkout down");
  assert_string_equal(jstr(m, "body"), "Payment API answered 503 three times\n\nhost: db-1\nretries: 3\n\n"
                                       "-- \nRestMon, channel ops-mail\n");
  json_decref(m);
}

static void test_email_starttls_and_auth_with_the_vault_password(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_pack("{s:s, s:s, s:s, s:s}", "cert", g_cert, "key", g_key, "user", "alerts",
                                 "password", SMTP_PASSWORD));
  start(f, NULL);
  send_ok(f, email_channel(&f->smtp, "{\"username\": \"alerts\", \"password_secret\": \"SMTP_PASSWORD\"}"),
          run_message());
  finish(f);
  assert_true(f->outs[0].delivered);
  json_t *m = sink_mail(&f->smtp, 1);
  assert_non_null(m);
  assert_true(json_is_true(json_object_get(m, "tls")));
  assert_string_equal(jstr(m, "login"), "alerts");
  json_decref(m);
}

static void test_email_wrong_password_is_permanent_and_never_shown(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_pack("{s:s, s:s, s:s, s:s}", "cert", g_cert, "key", g_key, "user", "alerts",
                                 "password", "the-right-one"));
  start(f, NULL);
  send_ok(f, email_channel(&f->smtp, "{\"username\": \"alerts\", \"password_secret\": \"SMTP_PASSWORD\"}"),
          run_message());
  finish(f);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_true(o->permanent);
  assert_int_equal(o->attempts, 1);
  assert_int_equal(o->status, 535);
  assert_int_equal(o->err, RM_EHTTP);
  char want[128];
  snprintf(want, sizeof want, "SMTP 535 from 127.0.0.1:%d (535 5.7.8 Authentication", f->smtp.port);
  assert_non_null(strstr(o->error, want));
  assert_non_null(strstr(o->error, ", not retried"));
  assert_no_secret(o->error);
  assert_null(sink_mail(&f->smtp, 1));
}

static void test_email_password_is_never_sent_without_tls(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_object()); /* no STARTTLS on offer */
  start(f, NULL);
  send_ok(f, email_channel(&f->smtp, "{\"username\": \"alerts\", \"password_secret\": \"SMTP_PASSWORD\"}"),
          run_message());
  finish(f);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_true(o->permanent);
  assert_int_equal(o->attempts, 1);
  char want[160];
  snprintf(want, sizeof want, "127.0.0.1:%d does not offer STARTTLS, which the channel requires", f->smtp.port);
  assert_non_null(strstr(o->error, want));
  assert_null(sink_mail(&f->smtp, 1));
}

static void test_email_4xx_is_retried_until_delivered(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_pack("{s:i}", "tempfail", 2));
  start(f, NULL);
  send_ok(f, email_channel(&f->smtp, NULL), run_message());
  finish(f);
  const out *o = &f->outs[0];
  assert_true(o->delivered);
  assert_int_equal(o->attempts, 3);
  assert_int_equal(o->status, 250);
  json_t *m = sink_mail(&f->smtp, 1);
  assert_non_null(m);
  assert_int_equal(json_integer_value(json_object_get(m, "data_calls")), 3);
  assert_null(sink_mail(&f->smtp, 2));
  json_decref(m);
}

static void test_email_4xx_until_attempts_run_out(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_pack("{s:i}", "tempfail", 10));
  start(f, NULL);
  send_ok(f, email_channel(&f->smtp, NULL), run_message());
  finish(f);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_false(o->permanent);
  assert_int_equal(o->attempts, 3);
  assert_int_equal(o->status, 451);
  char want[128];
  snprintf(want, sizeof want, "SMTP 451 from 127.0.0.1:%d (451 4.3.0 try again later) after 3 attempts",
           f->smtp.port);
  assert_string_equal(o->error, want);
}

static void test_email_refused_recipient_is_permanent(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_object());
  start(f, NULL);
  send_ok(f, email_channel(&f->smtp, "{\"to\": [\"ops@example.com\", \"reject-me@example.com\"]}"),
          run_message());
  finish(f);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_true(o->permanent);
  assert_int_equal(o->attempts, 1);
  assert_int_equal(o->status, 550);
  char want[160];
  snprintf(want, sizeof want,
           "SMTP 550 from 127.0.0.1:%d (550 5.1.1 <reject-me@example.com>: no such user), not retried",
           f->smtp.port);
  assert_string_equal(o->error, want);
  assert_null(sink_mail(&f->smtp, 1)); /* all or nothing */
}

static void test_email_sink_down_is_retried_then_fails(void **state) {
  fx *f = *state;
  start(f, NULL);
  json_t *c = email_channel(NULL, NULL);
  const char *url = jstr(c, "settings.smtp_url");
  int port = atoi(strrchr(url, ':') + 1);
  send_ok(f, c, run_message());
  finish(f);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_false(o->permanent);
  assert_int_equal(o->attempts, 3);
  assert_int_equal(o->status, 0);
  assert_int_equal(o->err, RM_EHTTP);
  char want[128];
  snprintf(want, sizeof want, "could not connect to 127.0.0.1:%d after 3 attempts", port);
  assert_string_equal(o->error, want);
}

static void on_tick(uv_timer_t *t) {
  fx *f = (fx *)((char *)t - offsetof(fx, tick));
  f->ticks++;
}

static void test_email_does_not_block_the_loop(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_pack("{s:f}", "delay", 0.6));
  start(f, NULL);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, on_tick, 10, 10);
  f->ticking = true;
  uint64_t t0 = uv_now(&f->loop);
  send_ok(f, email_channel(&f->smtp, NULL), run_message());
  finish(f);
  assert_true(f->outs[0].delivered);
  assert_true(f->outs[0].at - t0 >= 600);
  assert_true(f->ticks >= 30); /* the loop kept turning while the server stalled */
}

/* Closes the notifier once the stalled email is in DATA, the other email
 * waits to retry and Telegram got its 500 (then waits to retry): checked
 * every 5 ms, then left SETTLE_MS for the 500 to come back. */
static void close_when_waiting(uv_timer_t *t) {
  fx *f = (fx *)((char *)t - offsetof(fx, tick));
  char marker[192];
  snprintf(marker, sizeof marker, "%s/data.started", f->smtp.dir);
  if (f->nhits < 1 || f->n.smtp_running != 1 || access(marker, F_OK) != 0) return;
  if (uv_timer_get_repeat(t) != SETTLE_MS) {
    uv_timer_start(t, close_when_waiting, SETTLE_MS, SETTLE_MS);
    return;
  }
  uv_close((uv_handle_t *)t, NULL);
  f->ticking = false;
  f->closed_at = uv_now(&f->loop);
  rm_notify_close(&f->n, on_notifier_closed);
  assert_int_equal(f->nouts, 0); /* reported later, from the loop */
  json_t *c = email_channel(NULL, NULL), *m = run_message();
  assert_int_equal(rm_notify_send(&f->n, c, m, on_done, f), RM_ECANCELED);
  json_decref(c);
  json_decref(m);
}

static void test_close_aborts_smtp_in_progress_and_waiting_retries(void **state) {
  fx *f = *state;
  sink_start(&f->smtp, json_pack("{s:f}", "delay", 20.0));
  rm_notify_opts o = {.backoff_ms = 60000};
  start(f, &o);
  f->script[0] = 500, f->nscript = 1;
  send_ok(f, email_channel(&f->smtp, NULL), run_message()); /* stalls in DATA */
  send_ok(f, email_channel(NULL, NULL), run_message());     /* waits 60 s to retry */
  json_t *tg = json_pack("{s:s, s:s, s:{s:s, s:i, s:s}}", "name", "tg", "type", "telegram", "settings",
                         "bot_token_secret", "TG_TOKEN", "chat_id", 1, "api_url", f->base);
  send_ok(f, tg, run_message()); /* 500, waits 60 s to retry */
  f->manual_close = true;
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, close_when_waiting, 5, 5);
  f->ticking = true;
  finish(f);
  uv_update_time(&f->loop);
  assert_true(uv_now(&f->loop) - f->closed_at < 2000); /* the stalled transfer (20 s) did not hold the close */
  size_t during = 0, after = 0;
  for (size_t i = 0; i < 3; i++) {
    const out *x = &f->outs[i];
    assert_true(x->cancelled);
    assert_false(x->delivered);
    assert_false(x->permanent);
    assert_int_equal(x->err, RM_ECANCELED);
    assert_no_secret(x->error);
    if (strstr(x->error, "cancelled: the notifier closed during attempt 1 to 127.0.0.1:")) during++;
    if (strstr(x->error, "cancelled: the notifier closed after 1 attempt (last: ")) after++;
  }
  assert_int_equal(during, 1);
  assert_int_equal(after, 2);
}

/* ---- telegram, discord, slack, webhook against the HTTP receiver ------------- */

static json_t *telegram_channel(const fx *f, const char *extra_json) {
  json_t *c = json_pack("{s:s, s:s, s:{s:s, s:I, s:s}}", "name", "tg-ops", "type", "telegram", "settings",
                        "bot_token_secret", "TG_TOKEN", "chat_id", (json_int_t)-1001234567890LL, "api_url",
                        f->base);
  if (extra_json) {
    json_t *x = json_loads(extra_json, 0, NULL);
    assert_non_null(x);
    json_object_update(json_object_get(c, "settings"), x);
    json_decref(x);
  }
  return c;
}

/* A Discord or Slack channel whose URL secret points at the receiver. */
static json_t *url_channel(fx *f, const char *type, const char *text_tmpl) {
  char url[128], err[128];
  snprintf(url, sizeof url, "%s/hooks/%s/T0KEN-%s", f->base, type, type);
  assert_int_equal(rm_secrets_set(f->sec, "HOOK_URL", url, err, sizeof err), 0);
  json_t *c = json_pack("{s:s, s:s, s:{s:s}}", "name", type, "type", type, "settings", "webhook_url_secret",
                        "HOOK_URL");
  if (text_tmpl) json_object_set_new(json_object_get(c, "settings"), "text", json_string(text_tmpl));
  return c;
}

static void test_telegram_posts_chat_id_and_text_to_the_bot_path(void **state) {
  fx *f = *state;
  start(f, NULL);
  send_ok(f, telegram_channel(f, NULL), run_message());
  finish(f);
  assert_true(f->outs[0].delivered);
  assert_int_equal(f->outs[0].attempts, 1);
  assert_int_equal(f->nhits, 1);
  const hit *h = &f->hits[0];
  /* the token percent-encoded in the path, as a value in a URL is (':' is %3A) */
  assert_string_equal(h->path, "/bot123456%3AAAH-t0ken_Xq/sendMessage");
  assert_int_equal(json_integer_value(json_object_get(h->body, "chat_id")), -1001234567890LL);
  assert_string_equal(jstr(h->body, "text"), "[critical] Checkout down\n\nPayment API answered 503 three times\n\n"
                                             "host: db-1\nretries: 3");
  assert_null(json_object_get(h->body, "parse_mode"));
  assert_string_equal(h->event_id, "run-42.failed");
}

static void test_telegram_html_mode_escapes_values_and_text_template(void **state) {
  fx *f = *state;
  start(f, NULL);
  json_t *msg = run_message();
  json_object_set_new(msg, "title", json_string("<script> & co"));
  send_ok(f, telegram_channel(f, "{\"parse_mode\": \"HTML\"}"), json_deep_copy(msg));
  send_ok(f, telegram_channel(f, "{\"parse_mode\": \"MarkdownV2\", \"text\": \"*{{title}}* {{event.run.status}}.\"}"),
          msg);
  finish(f);
  assert_int_equal(f->nhits, 2);
  for (size_t i = 0; i < 2; i++) {
    const json_t *b = f->hits[i].body;
    if (strcmp(jstr(b, "parse_mode"), "HTML") == 0)
      assert_string_equal(jstr(b, "text"), "<b>[critical] &lt;script&gt; &amp; co</b>\n\nPayment API answered 503 "
                                           "three times\n\nhost: db-1\nretries: 3");
    else
      assert_string_equal(jstr(b, "text"), "*<script\\> & co* failed."); /* values escaped, not the template */
  }
}

static void test_telegram_500_then_200_is_delivered_after_a_retry(void **state) {
  fx *f = *state;
  start(f, NULL);
  f->script[0] = 500, f->nscript = 1;
  send_ok(f, telegram_channel(f, NULL), run_message());
  finish(f);
  assert_int_equal(f->nhits, 2);
  const out *o = &f->outs[0];
  assert_true(o->delivered);
  assert_int_equal(o->attempts, 2);
  assert_int_equal(o->status, 200);
  assert_string_equal(o->error, "");
}

static void test_telegram_refusal_is_permanent_with_its_reason_and_no_token(void **state) {
  fx *f = *state;
  start(f, NULL);
  f->script[0] = 400, f->nscript = 1;
  f->answer = "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat not found (bot " BOT_TOKEN
              ")\"}";
  send_ok(f, telegram_channel(f, NULL), run_message());
  finish(f);
  assert_int_equal(f->nhits, 1);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_true(o->permanent);
  assert_int_equal(o->attempts, 1);
  assert_int_equal(o->status, 400);
  char want[200];
  snprintf(want, sizeof want,
           "HTTP 400 from 127.0.0.1:%d, not retried (Bad Request: chat not found (bot ***))", f->port);
  assert_string_equal(o->error, want); /* even an echoed token is masked */
}

static void test_telegram_down_names_no_token(void **state) {
  fx *f = *state;
  start(f, NULL);
  int port = closed_port();
  char api[64];
  snprintf(api, sizeof api, "{\"api_url\": \"http://127.0.0.1:%d/\"}", port);
  send_ok(f, telegram_channel(f, api), run_message());
  finish(f);
  const out *o = &f->outs[0];
  assert_false(o->delivered);
  assert_false(o->permanent);
  assert_int_equal(o->attempts, 3);
  char want[128];
  snprintf(want, sizeof want, "could not connect to 127.0.0.1:%d after 3 attempts", port);
  assert_string_equal(o->error, want);
}

static void test_discord_posts_an_embed_that_mentions_nobody(void **state) {
  fx *f = *state;
  start(f, NULL);
  json_t *msg = run_message();
  json_object_set_new(msg, "text", json_string("@everyone the API is down"));
  send_ok(f, url_channel(f, "discord", NULL), msg);
  finish(f);
  assert_true(f->outs[0].delivered);
  const json_t *b = f->hits[0].body;
  assert_string_equal(f->hits[0].path, "/hooks/discord/T0KEN-discord");
  json_t *want = json_pack("{s:{s:[]}, s:[{s:s, s:s, s:i, s:[{s:s, s:s, s:b}, {s:s, s:s, s:b}]}]}",
                           "allowed_mentions", "parse", "embeds", "title", "[critical] Checkout down",
                           "description", "@everyone the API is down", "color", 0xE74C3C, "fields", "name", "host",
                           "value", "db-1", "inline", 1, "name", "retries", "value", "3", "inline", 1);
  assert_true(json_equal(b, want));
  json_decref(want);
}

static void test_slack_posts_blocks_with_escaped_text(void **state) {
  fx *f = *state;
  start(f, NULL);
  json_t *msg = run_message();
  json_object_set_new(msg, "text", json_string("latency > 2 s & <!channel>"));
  send_ok(f, url_channel(f, "slack", NULL), msg);
  finish(f);
  assert_true(f->outs[0].delivered);
  const json_t *b = f->hits[0].body;
  json_t *want = json_pack(
      "{s:s, s:[{s:s, s:{s:s, s:s, s:b}}, {s:s, s:{s:s, s:s}}, {s:s, s:[{s:s, s:s}, {s:s, s:s}]}]}", "text",
      "[critical] Checkout down", "blocks", "type", "header", "text", "type", "plain_text", "text",
      "[critical] Checkout down", "emoji", 1, "type", "section", "text", "type", "mrkdwn", "text",
      "latency &gt; 2 s &amp; &lt;!channel&gt;", "type", "section", "fields", "type", "mrkdwn", "text",
      "*host*\ndb-1", "type", "mrkdwn", "text", "*retries*\n3");
  assert_true(json_equal(b, want));
  json_decref(want);
}

static void test_chat_text_templates_replace_the_layout(void **state) {
  fx *f = *state;
  start(f, NULL);
  send_ok(f, url_channel(f, "slack", "{{title}}: {{event.run.workflow_name}} {{event.run.status}} <{{channel.name}}>"),
          run_message());
  finish(f);
  const json_t *b = f->hits[0].body;
  json_t *want = json_pack("{s:s}", "text", "Checkout down: checkout failed <slack>");
  assert_true(json_equal(b, want));
  json_decref(want);
}

static bool signature_ok(const hit *h, const char *key) {
  char *body = json_dumps(h->body, JSON_COMPACT | JSON_PRESERVE_ORDER);
  size_t n = strlen(h->ts) + 1 + strlen(body);
  char *msg = malloc(n + 1);
  snprintf(msg, n + 1, "%s.%s", h->ts, body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mlen = 0;
  HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)msg, n, mac, &mlen);
  char want[8 + 2 * EVP_MAX_MD_SIZE] = "sha256=";
  for (unsigned i = 0; i < mlen; i++) snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
  free(msg);
  free(body);
  return strcmp(h->sig, want) == 0;
}

static void test_webhook_renders_its_template_signs_and_fills_header_secrets(void **state) {
  fx *f = *state;
  start(f, NULL);
  char url[96];
  snprintf(url, sizeof url, "%s/hook", f->base);
  json_t *c = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}, s:s, s:{s:s, s:s, s:s}}}", "name", "hooks", "type",
                        "webhook", "settings", "url", url, "headers", "Authorization", "Bearer {{ secrets.API_TOKEN }}",
                        "X-Custom", "yes", "hmac_secret", "HOOK_KEY", "template", "status", "{{event.run.status}}",
                        "ms", "{{event.run.duration_ms}}", "summary", "{{title}} ({{channel.name}})");
  send_ok(f, c, run_message());
  finish(f);
  assert_true(f->outs[0].delivered);
  const hit *h = &f->hits[0];
  json_t *want = json_pack("{s:s, s:i, s:s}", "status", "failed", "ms", 1234, "summary", "Checkout down (hooks)");
  assert_true(json_equal(h->body, want));
  json_decref(want);
  assert_string_equal(h->auth, "Bearer " API_TOKEN);
  assert_string_equal(h->custom, "yes");
  assert_string_equal(h->event_id, "run-42.failed");
  assert_true(signature_ok(h, HOOK_KEY));
}

static void test_webhook_without_template_posts_the_event(void **state) {
  fx *f = *state;
  start(f, NULL);
  char url[96];
  snprintf(url, sizeof url, "%s/hook", f->base);
  json_t *msg = run_message();
  json_t *event = json_deep_copy(json_object_get(msg, "event"));
  send_ok(f, json_pack("{s:s, s:s, s:{s:s}}", "name", "h", "type", "webhook", "settings", "url", url), msg);
  finish(f);
  assert_true(f->outs[0].delivered);
  assert_true(json_equal(f->hits[0].body, event));
  assert_string_equal(f->hits[0].sig, "");
  json_decref(event);
}

/* ---- channel plugins: verdicts, limits, the close ------------------------------ */

static json_t *plugin_channel(const char *type, const char *name, const char *settings_json) {
  json_t *s = json_loads(settings_json, 0, NULL);
  assert_non_null(s);
  return json_pack("{s:s, s:s, s:o}", "name", name, "type", type, "settings", s);
}

static const out *outcome_of(const fx *f, const char *channel) {
  for (size_t i = 0; i < f->nouts; i++)
    if (strcmp(f->outs[i].channel, channel) == 0) return &f->outs[i];
  fail_msg("no outcome for channel %s", channel);
  return NULL;
}

static void assert_failed(const out *o, bool permanent, unsigned attempts, int err, const char *error) {
  assert_false(o->delivered);
  assert_true(o->permanent == permanent);
  assert_int_equal(o->attempts, attempts);
  assert_int_equal(o->err, err);
  assert_string_equal(o->error, error);
  assert_no_secret(o->error);
}

static void test_plugin_verdicts_become_outcomes_with_retries_and_no_secret(void **state) {
  fx *f = *state;
  start(f, NULL);
  uint64_t t0 = uv_now(&f->loop);
  static const char *const cases[][2] = {
      {"deliver", "{\"room\": \"ops\"}"},
      {"retry", "{\"room\": \"ops\", \"mode\": \"retry\"}"},
      {"refuse", "{\"room\": \"ops\", \"mode\": \"refuse\"}"},
      {"raise", "{\"room\": \"ops\", \"mode\": \"raise\"}"},
      {"coded", "{\"room\": \"ops\", \"mode\": \"coded\"}"},
      {"show", "{\"room\": \"ops\", \"mode\": \"show\", \"key\": \"HOOK_KEY\"}"},
      {"odd", "{\"room\": \"ops\", \"mode\": \"odd\"}"},
      {"no-room", "{\"mode\": \"deliver\"}"},
      {"no-key", "{\"room\": \"ops\", \"key\": \"NOPE\"}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    send_ok(f, plugin_channel("verdicts", cases[i][0], cases[i][1]), run_message());
  finish(f);
  const out *o = outcome_of(f, "deliver");
  assert_true(o->delivered);
  assert_int_equal(o->attempts, 1);
  assert_string_equal(o->error, "");
  assert_string_equal(o->type, "verdicts");
  o = outcome_of(f, "retry");
  assert_true(o->delivered);
  assert_int_equal(o->attempts, 2);
  assert_true(o->at - t0 >= 40); /* the plugin's retry_after_ms, above the 5 ms backoff */
  assert_failed(outcome_of(f, "refuse"), true, 1, RM_EINVAL, "no room ops, not retried");
  o = outcome_of(f, "raise");
  assert_failed(o, true, 1, RM_ELUA, o->error);
  assert_non_null(strstr(o->error, "plugin error: "));
  assert_non_null(strstr(o->error, "boom"));
  assert_failed(outcome_of(f, "coded"), true, 1, RM_EINVAL, "settings.room: unknown, not retried");
  /* Lua holds a token in place of the secret; what it says shows its name (the vault's names are case-insensitive) */
  assert_failed(outcome_of(f, "show"), true, 1, RM_EINVAL, "key is {{secrets.hook_key}}, not retried");
  assert_failed(outcome_of(f, "odd"), true, 1, RM_EINVAL,
                "plugin.send returned a number, not a response or a verdict, not retried");
  assert_failed(outcome_of(f, "no-room"), true, 0, RM_EINVAL, "settings.room: missing");
  assert_failed(outcome_of(f, "no-key"), true, 0, RM_ENOTFOUND, "settings.key: the secret NOPE is not in the vault");
}

static void test_runaway_and_slow_plugins_end_as_failed_sends(void **state) {
  fx *f = *state;
  rm_notify_opts o = {.http_timeout_ms = 100, .max_attempts = 2};
  start(f, &o);
  send_ok(f, plugin_channel("looper", "loop", "{}"), run_message());
  send_ok(f, plugin_channel("sleeper", "slow", "{}"), run_message());
  finish(f);
  assert_failed(outcome_of(f, "loop"), true, 1, RM_EBUDGET,
                "channel 'loop' (plugin looper): CPU budget of 2000000 Lua instructions exhausted, not retried");
  assert_failed(outcome_of(f, "slow"), false, 2, RM_ETIMEOUT,
                "channel 'slow' (plugin sleeper): timed out after 100 ms after 2 attempts");
}

static void close_soon(uv_timer_t *t) {
  fx *f = (fx *)((char *)t - offsetof(fx, tick));
  uv_close((uv_handle_t *)t, NULL);
  f->ticking = false;
  rm_notify_close(&f->n, on_notifier_closed);
}

static void test_close_cancels_a_plugin_attempt_in_progress(void **state) {
  fx *f = *state;
  start(f, NULL);
  send_ok(f, plugin_channel("sleeper", "slow", "{}"), run_message());
  f->manual_close = true;
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, close_soon, 50, 0);
  f->ticking = true;
  finish(f);
  const out *o = outcome_of(f, "slow");
  assert_true(o->cancelled);
  assert_int_equal(o->err, RM_ECANCELED);
  assert_string_equal(o->error, "cancelled: the notifier closed during attempt 1 (channel plugin sleeper)");
}

/* ---- channels that cannot be used -------------------------------------------- */

static void test_unusable_channels_fail_permanently_without_an_attempt(void **state) {
  fx *f = *state;
  start(f, NULL);
  char err[128];
  assert_int_equal(rm_secrets_set(f->sec, "NOT_A_URL", "just-some-value", err, sizeof err), 0);
  assert_int_equal(rm_secrets_set(f->sec, "BAD_TOKEN", "12/../x?y", err, sizeof err), 0);
  const struct {
    const char *channel;
    int err;
    const char *error;
  } cases[] = {
      {"{\"type\": \"telegram\", \"settings\": {\"bot_token_secret\": \"NOPE\", \"chat_id\": 1}}", RM_ENOTFOUND,
       "settings.bot_token_secret: the secret NOPE is not in the vault"},
      {"{\"type\": \"telegram\", \"settings\": {\"bot_token_secret\": \"BAD_TOKEN\", \"chat_id\": 1}}", RM_EINVAL,
       "settings.bot_token_secret: the secret BAD_TOKEN does not hold a bot token"},
      {"{\"type\": \"telegram\", \"settings\": {\"bot_token_secret\": \"TG_TOKEN\"}}", RM_EINVAL,
       "settings.chat_id: missing"},
      {"{\"type\": \"discord\", \"settings\": {\"webhook_url_secret\": \"NOT_A_URL\"}}", RM_EINVAL,
       "settings.webhook_url_secret: the secret NOT_A_URL does not hold an https:// URL"},
      {"{\"type\": \"email\", \"settings\": {\"smtp_url\": \"http://x\", \"from\": \"a@b.c\", \"to\": [\"d@e.f\"]}}",
       RM_EINVAL, "settings.smtp_url: must be an smtp:// or smtps:// URL with a host"},
      {"{\"type\": \"email\", \"settings\": {\"smtp_url\": \"smtp://x\", \"from\": \"a@b.c\", \"to\": "
       "[\"d@e.f\", \"\xc3\xa9@e.f\"]}}",
       RM_EINVAL, "settings.to[1]: must be an ASCII e-mail address"},
      {"{\"type\": \"email\", \"settings\": {\"smtp_url\": \"smtp://x\", \"from\": \"a@b.c\", \"to\": [\"d@e.f\"], "
       "\"password_secret\": \"SMTP_PASSWORD\"}}",
       RM_EINVAL, "settings.username: required with password_secret"},
      {"{\"type\": \"webhook\", \"settings\": {\"url\": \"http://x/\", \"headers\": {\"Authorization\": "
       "\"Bearer {{secrets.GONE}}\"}}}",
       RM_ENOTFOUND, "settings.headers.Authorization: the secret GONE is not in the vault"},
      {"{\"type\": \"pager\", \"settings\": {}}", RM_EINVAL, "type: not a known channel type"},
  };
  size_t n = sizeof cases / sizeof cases[0];
  for (size_t i = 0; i < n; i++) {
    json_t *c = json_loads(cases[i].channel, 0, NULL);
    assert_non_null(c);
    send_ok(f, c, run_message());
  }
  finish(f);
  assert_int_equal(f->nhits, 0);
  for (size_t i = 0; i < n; i++) {
    const out *o = &f->outs[i];
    assert_false(o->delivered);
    assert_true(o->permanent);
    assert_int_equal(o->attempts, 0);
    assert_int_equal(o->err, cases[i].err);
    assert_string_equal(o->error, cases[i].error);
    assert_null(strstr(o->error, "just-some-value"));
  }
}

static void test_bad_calls_are_refused_without_callback(void **state) {
  fx *f = *state;
  start(f, NULL);
  json_t *c = telegram_channel(f, NULL), *m = run_message(), *arr = json_array();
  assert_int_equal(rm_notify_send(&f->n, arr, m, on_done, f), RM_EINVAL);
  assert_int_equal(rm_notify_send(&f->n, c, arr, on_done, f), RM_EINVAL);
  assert_int_equal(rm_notify_send(&f->n, c, m, NULL, f), RM_EINVAL);
  assert_int_equal(f->n.active, 0);
  json_decref(c);
  json_decref(m);
  json_decref(arr);
  rm_notify_close(&f->n, on_notifier_closed);
  finish(f);
  assert_int_equal(f->nouts, 0);
  rm_notify_opts big = {.max_attempts = RM_WEBHOOK_MAX_ATTEMPTS + 1};
  rm_notifier n2;
  rm_http_client dummy = {.loop = &f->loop};
  assert_int_equal(rm_notify_init(&n2, &dummy, &big), RM_EINVAL);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rm_log_configure(RM_LOG_WARN, RM_LOG_TEXT);
  signal(SIGPIPE, SIG_IGN);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_templates_resolve_paths_keep_types_and_blank_missing_values),
      cmocka_unit_test(test_escapes_make_values_plain_text_in_each_markup),
      cmocka_unit_test(test_mime_message_has_crlf_lines_encoded_subject_and_qp_body),
      T(test_email_arrives_with_mapped_utf8_subject_and_body),
      T(test_email_default_layout_without_templates),
      T(test_email_starttls_and_auth_with_the_vault_password),
      T(test_email_wrong_password_is_permanent_and_never_shown),
      T(test_email_password_is_never_sent_without_tls),
      T(test_email_4xx_is_retried_until_delivered),
      T(test_email_4xx_until_attempts_run_out),
      T(test_email_refused_recipient_is_permanent),
      T(test_email_sink_down_is_retried_then_fails),
      T(test_email_does_not_block_the_loop),
      T(test_close_aborts_smtp_in_progress_and_waiting_retries),
      T(test_telegram_posts_chat_id_and_text_to_the_bot_path),
      T(test_telegram_html_mode_escapes_values_and_text_template),
      T(test_telegram_500_then_200_is_delivered_after_a_retry),
      T(test_telegram_refusal_is_permanent_with_its_reason_and_no_token),
      T(test_telegram_down_names_no_token),
      T(test_discord_posts_an_embed_that_mentions_nobody),
      T(test_slack_posts_blocks_with_escaped_text),
      T(test_chat_text_templates_replace_the_layout),
      T(test_webhook_renders_its_template_signs_and_fills_header_secrets),
      T(test_webhook_without_template_posts_the_event),
      T(test_plugin_verdicts_become_outcomes_with_retries_and_no_secret),
      T(test_runaway_and_slow_plugins_end_as_failed_sends),
      T(test_close_cancels_a_plugin_attempt_in_progress),
      T(test_unusable_channels_fail_permanently_without_an_attempt),
      T(test_bad_calls_are_refused_without_callback),
  };
#undef T
  int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
  curl_global_cleanup();
  return rc;
}
