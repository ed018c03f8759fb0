/* Reporters (core/report): the timeline, JUnit XML and --repeat figures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "util/err.h"

/* Records are written with ' for " so they stay readable here. */
static json_t *load(const char *text) {
  char *s = strdup(text);
  assert_non_null(s);
  for (char *p = s; *p; p++)
    if (*p == '\'') *p = '"';
  json_error_t e;
  json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
  if (!v) print_error("bad test record: %s at %d\n", e.text, e.position);
  assert_non_null(v);
  free(s);
  return v;
}

typedef struct sink {
  FILE *f;
  char *data;
  size_t len;
} sink;

static void sink_open(sink *s) {
  s->data = NULL;
  s->len = 0;
  s->f = open_memstream(&s->data, &s->len);
  assert_non_null(s->f);
}

/* Closes the stream; the caller frees the returned text. */
static char *sink_close(sink *s) {
  fclose(s->f);
  return s->data;
}

static char *timeline_of(const json_t *run, bool color, bool verbose) {
  rm_report_opts o = {color, verbose, 40};
  sink s;
  sink_open(&s);
  assert_int_equal(rm_report_timeline(s.f, run, &o), 0);
  return sink_close(&s);
}

static char *timeline(const char *record, bool color, bool verbose) {
  json_t *run = load(record);
  char *out = timeline_of(run, color, verbose);
  json_decref(run);
  return out;
}

static void contains(const char *hay, const char *needle) {
  if (!strstr(hay, needle)) {
    print_error("expected \"%s\" in:\n%s\n", needle, hay);
    fail();
  }
}

static void lacks(const char *hay, const char *needle) {
  if (strstr(hay, needle)) {
    print_error("did not expect \"%s\" in:\n%s\n", needle, hay);
    fail();
  }
}

static const char SUCCEEDED[] =
    "{'run_id':'6f1c2a9e-0000-4000-8000-000000000001',"
    " 'workflow':{'name':'order-transaction','source':'examples/order.json'},"
    " 'status':'succeeded','reason':'all 1 tasks succeeded','duration_ms':1240.4,"
    " 'started_at':'2026-11-23T10:00:00.123Z',"
    " 'steps':[{'task':'login','type':'http','status':'succeeded','reason':'HTTP 200 in [2xx]',"
    "   'duration_ms':12.5,'edge':'success','next':[],"
    "   'attempts':[{'attempt':1,'status':'succeeded','duration_ms':12.5,"
    "     'exchanges':[{'request':{'method':'POST','url':'http://127.0.0.1:8900/login',"
    "                              'headers':{'content-type':'application/json'},"
    "                              'body':'{\\'user\\':\\'{{secrets.USER}}\\'}'},"
    "                   'response':{'status':200,'http_version':'1.1',"
    "                               'headers':{'content-type':'application/json'},"
    "                               'body':'first line\\nsecond line','size':23},"
    "                   'timings':{'dns_ms':0.1,'total_ms':3.0}}],"
    "     'extracted':{'token':'abc'},"
    "     'assertions':[{'subject':'status','op':'eq','expected':200,'actual':200,"
    "                    'passed':true}]}]}],"
    " 'summary':{'tasks':1,'succeeded':1,'attempts':1,'requests':1}}";

static const char FAILED[] =
    "{'run_id':'r2','workflow':{'name':'order-transaction'},'status':'failed',"
    " 'reason':'task read_back failed: assert $.qty eq 2: got 3','duration_ms':300,"
    " 'steps':["
    "  {'task':'create_order','status':'succeeded','duration_ms':700,"
    "   'attempts':["
    "    {'attempt':1,'status':'failed','reason':'HTTP 503 not in success codes [2xx]',"
    "     'retry':{'delay_ms':212,'reason':'HTTP 503 (retry_on 5xx)'},'duration_ms':3.1,"
    "     'exchanges':[{'request':{'method':'POST','url':'http://h:1/orders'},"
    "                   'response':{'status':503}}]},"
    "    {'attempt':2,'status':'failed','reason':'connection refused',"
    "     'retry':{'delay_ms':430,'reason':'E_HTTP (retry_on transport)'},"
    "     'exchanges':[{'request':{'method':'POST','url':'http://h:1/orders'},"
    "                   'error':{'code':'E_HTTP','message':'connection refused'}}]},"
    "    {'attempt':3,'status':'succeeded','duration_ms':4.0,"
    "     'exchanges':[{'request':{'method':'POST','url':'http://h:1/orders'},"
    "                   'response':{'status':201}}],"
    "     'extracted':{'order_id':'ord-17'}}]},"
    "  {'task':'read_back','status':'failed','reason':'assert $.qty eq 2: got 3',"
    "   'duration_ms':2.2,'edge':'failure','next':['cleanup'],"
    "   'attempts':[{'attempt':1,'status':'failed','duration_ms':2.2,"
    "     'exchanges':[{'request':{'method':'GET','url':'http://h:1/orders/ord-17'},"
    "                   'response':{'status':200}}],"
    "     'assertions':[{'subject':'status','op':'eq','expected':200,'actual':200,"
    "                    'passed':true},"
    "                   {'subject':'$.qty','op':'eq','expected':2,'actual':3,'passed':false,"
    "                    'message':'$.qty eq 2: got 3'}]}]},"
    "  {'task':'read_xml','status':'skipped','reason':'its predecessors took other edges'}"
    " ]}";

static void test_timeline_succeeded_run_shows_exchange_duration_and_variables(void **st) {
  (void)st;
  char *out = timeline(SUCCEEDED, false, false);
  contains(out, "order-transaction  SUCCEEDED in 1.24 s");
  contains(out, "run 6f1c2a9e-0000-4000-8000-000000000001");
  contains(out, "  ✓ login  POST http://127.0.0.1:8900/login → 200  12.5 ms\n");
  contains(out, "      token = \"abc\"\n");
  contains(out, "1 task: 1 succeeded; 1 attempt, 1 request");
  contains(out, "\nSUCCEEDED: all 1 tasks succeeded\n");
  lacks(out, "assert status");  /* passed assertions wait for verbose */
  lacks(out, "attempt 1/1");
  lacks(out, "\033[");
  free(out);
}

static void test_timeline_shows_every_retry_with_reason_and_delay(void **st) {
  (void)st;
  char *out = timeline(FAILED, false, false);
  contains(out, "  ↻ create_order  attempt 1/3  POST http://h:1/orders → 503  3.1 ms  failed: "
                "HTTP 503 not in success codes [2xx]; retry in 212 ms: HTTP 503 (retry_on 5xx)\n");
  contains(out, "  ↻ create_order  attempt 2/3  POST …/orders → E_HTTP: connection refused  "
                "failed: connection refused; retry in 430 ms: E_HTTP (retry_on transport)\n");
  contains(out, "  ✓ create_order  attempt 3/3  POST …/orders → 201  4.0 ms\n");
  contains(out, "      order_id = \"ord-17\"\n");
  free(out);
}

static void test_timeline_failed_step_shows_failed_assertion_and_reason(void **st) {
  (void)st;
  char *out = timeline(FAILED, false, false);
  contains(out, "  ✗ read_back     GET …/orders/ord-17 → 200  2.2 ms\n");
  contains(out, "      assert $.qty eq 2 ✗ got 3\n");
  contains(out, "      failed: assert $.qty eq 2: got 3; failure edge to cleanup\n");
  lacks(out, "assert status eq 200");
  contains(out, "\nFAILED: task read_back failed: assert $.qty eq 2: got 3\n");
  free(out);
}

static void test_timeline_skipped_step_shows_why(void **st) {
  (void)st;
  char *out = timeline(FAILED, false, false);
  contains(out, "  - read_xml      skipped: its predecessors took other edges\n");
  contains(out, "3 tasks: 1 succeeded, 1 failed, 1 skipped; 4 attempts, 4 requests");
  free(out);
}

static void test_timeline_marks_dry_run_and_unsent_requests(void **st) {
  (void)st;
  char *out = timeline(
      "{'workflow':{'name':'w'},'status':'succeeded','dry_run':true,'reason':'dry run',"
      " 'steps':[{'task':'a','status':'succeeded','attempts':[{'status':'succeeded',"
      "   'exchanges':[{'request':{'method':'GET','url':'http://x/y'}}]}]}]}",
      false, false);
  contains(out, "w  SUCCEEDED  (dry run)\n");
  contains(out, "  ✓ a  GET http://x/y → not sent (dry run)\n");
  free(out);
}

static void test_timeline_shortens_long_values(void **st) {
  (void)st;
  char *out = timeline("{'steps':[{'task':'t','status':'succeeded','attempts':[{"
                       " 'extracted':{'v':'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}}]}]}",
                       false, false);
  /* 60 code points: the quote, 58 letters, the ellipsis. */
  contains(out, "v = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…\n");
  free(out);
}

static void test_timeline_colours_only_when_asked(void **st) {
  (void)st;
  char *plain = timeline(FAILED, false, false), *color = timeline(FAILED, true, false);
  lacks(plain, "\033[");
  contains(color, "\033[31m✗ read_back\033[0m");
  contains(color, "\033[32m✓ create_order\033[0m");
  contains(color, "\033[33m↻ create_order\033[0m");
  contains(color, "\033[2m- read_xml\033[0m");
  free(plain);
  free(color);
}

static void test_timeline_verbose_adds_heads_bodies_and_passed_assertions(void **st) {
  (void)st;
  char *out = timeline(SUCCEEDED, false, true);
  contains(out, "      > POST http://127.0.0.1:8900/login\n");
  contains(out, "      > content-type: application/json\n");
  contains(out, "      > {\"user\":\"{{secrets.USER}}\"}\n");
  contains(out, "      < HTTP/1.1 200\n");
  contains(out, "      < first line\n      < second line\n");
  contains(out, "timings  dns 0.1 ms  total 3.0 ms\n");
  contains(out, "      assert status eq 200 ✓\n");
  contains(out, "  started 2026-11-23T10:00:00.123Z  source examples/order.json\n");
  free(out);
}

static void test_timeline_verbose_cuts_bodies_at_the_preview_length(void **st) {
  (void)st;
  json_t *run = load("{'steps':[{'task':'t','status':'failed','attempts':[{'exchanges':[{"
                     " 'request':{'method':'GET','url':'http://x/'},"
                     " 'response':{'status':500,'size':5000,'truncated':true,"
                     "  'body':'0123456789012345678901234567890123456789TAIL'}}]}]}]}");
  char *out = timeline_of(run, false, true);
  contains(out, "      < 012345678901234567890123456789012345678…\n");
  contains(out, "      < (5000 bytes in all)\n");
  lacks(out, "TAIL");
  free(out);
  json_decref(run);
}

static void test_timeline_verbose_shows_first_lines_of_output(void **st) {
  (void)st;
  const char *rec = "{'steps':[{'task':'t','status':'succeeded','attempts':[{"
                    " 'output':{'format':'csv',"
                    "           'content':'a,b\\n1,2\\n3,4\\n5,6\\n7,8\\n9,0\\n'}}]}]}";
  char *brief = timeline(rec, false, false), *full = timeline(rec, false, true);
  contains(brief, "      output csv, 24 bytes, 6 lines\n");
  lacks(brief, "| a,b");
  contains(full, "      | a,b\n      | 1,2\n");
  contains(full, "      | 7,8\n      | …\n");
  lacks(full, "9,0");
  free(brief);
  free(full);
}

static void test_timeline_shows_each_exchange_of_a_multi_request_attempt(void **st) {
  (void)st;
  char *out = timeline(
      "{'steps':[{'task':'t','status':'failed','reason':'second call failed','attempts':[{"
      " 'status':'failed','duration_ms':9,"
      " 'exchanges':[{'request':{'method':'GET','url':'http://a/1'},'response':{'status':200},"
      "               'timings':{'total_ms':2}},"
      "              {'request':{'method':'GET','url':'http://a/2'},"
      "               'error':{'code':'E_TIMEOUT','message':'no answer in 5 s'}}],"
      " 'error':{'code':'E_TIMEOUT','message':'no answer in 5 s'}}]}]}",
      false, false);
  contains(out, "  ✗ t  2 requests  9.0 ms\n");
  contains(out, "      GET http://a/1 → 200  2.0 ms\n");
  contains(out, "      GET …/2 → E_TIMEOUT: no answer in 5 s\n");
  lacks(out, "error E_TIMEOUT"); /* already shown on its exchange */
  contains(out, "      failed: second call failed\n");
  free(out);
}

static void test_timeline_neutralises_terminal_control_sequences(void **st) {
  (void)st;
  json_t *run = load("{'status':'failed','steps':[{'task':'t','status':'failed',"
                     " 'reason':'x','attempts':[{'extracted':{'v':'ok'}}]}]}");
  json_object_set_new(run, "reason", json_string("bad \x1b]0;pwned\x07 \xe2\x80\xae!"));
  json_object_set_new(json_array_get(json_object_get(run, "steps"), 0), "reason",
                      json_stringn_nocheck("\xff\x9b" "1m", 4));
  char *out = timeline_of(run, false, false);
  lacks(out, "\x1b");
  lacks(out, "\x07");
  lacks(out, "\xe2\x80\xae");
  contains(out, "FAILED: bad \\x1b]0;pwned\\x07 \\u202e!");
  contains(out, "failed: \xef\xbf\xbd\xef\xbf\xbd" "1m");
  free(out);
  json_decref(run);
}

static void test_timeline_of_empty_record_says_unknown(void **st) {
  (void)st;
  char *out = timeline("{}", false, false);
  assert_string_equal(out, "(unnamed workflow)  UNKNOWN\n  (no steps)\nUNKNOWN\n");
  free(out);
}

static void test_timeline_rejects_what_is_not_a_record(void **st) {
  (void)st;
  json_t *arr = json_array(), *str = json_string("x");
  sink s;
  sink_open(&s);
  assert_int_equal(rm_report_timeline(s.f, arr, NULL), RM_EINVAL);
  assert_int_equal(rm_report_timeline(s.f, NULL, NULL), RM_EINVAL);
  assert_int_equal(rm_report_junit(s.f, str), RM_EINVAL);
  assert_int_equal(rm_report_junit(s.f, NULL), RM_EINVAL);
  char *out = sink_close(&s);
  assert_string_equal(out, "");
  free(out);
  json_decref(arr);
  json_decref(str);
}

/* JUnit ------------------------------------------------------------------ */

static xmlDocPtr parse_xml(const char *xml) {
  xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "junit.xml", "UTF-8",
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!doc) print_error("not well-formed XML:\n%s\n", xml);
  assert_non_null(doc);
  return doc;
}

/* The string value of an XPath expression over doc; caller frees. */
static char *xpath(xmlDocPtr doc, const char *expr) {
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  xmlXPathObjectPtr r = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
  assert_non_null(r);
  xmlChar *s = xmlXPathCastToString(r);
  char *out = strdup((const char *)s);
  xmlFree(s);
  xmlXPathFreeObject(r);
  xmlXPathFreeContext(ctx);
  return out;
}

static void xpath_is(xmlDocPtr doc, const char *expr, const char *want) {
  char *got = xpath(doc, expr);
  if (strcmp(got, want)) print_error("%s: got \"%s\", want \"%s\"\n", expr, got, want);
  assert_string_equal(got, want);
  free(got);
}

static char *junit_of(const json_t *runs) {
  sink s;
  sink_open(&s);
  assert_int_equal(rm_report_junit(s.f, runs), 0);
  return sink_close(&s);
}

static void test_junit_is_well_formed_with_counts(void **st) {
  (void)st;
  json_t *runs = json_array();
  json_array_append_new(runs, load(SUCCEEDED));
  json_array_append_new(runs, load(FAILED));
  char *xml = junit_of(runs);
  xmlDocPtr doc = parse_xml(xml);
  xpath_is(doc, "string(/testsuites/@tests)", "4");
  xpath_is(doc, "string(/testsuites/@failures)", "1");
  xpath_is(doc, "string(/testsuites/@skipped)", "1");
  xpath_is(doc, "count(/testsuites/testsuite)", "2");
  xpath_is(doc, "string(/testsuites/testsuite[1]/@name)", "order-transaction #1");
  xpath_is(doc, "string(/testsuites/testsuite[1]/@time)", "1.240");
  xpath_is(doc, "string(/testsuites/testsuite[1]/@timestamp)", "2026-11-23T10:00:00");
  xpath_is(doc, "string(//testsuite[2]/@failures)", "1");
  xpath_is(doc, "string(//testsuite[2]/testcase[@name='read_back']/@classname)",
           "restmon.order-transaction");
  xpath_is(doc, "string(//testsuite[2]/testcase[@name='read_back']/@time)", "0.002");
  xpath_is(doc, "string(//testcase[@name='read_back']/failure/@message)",
           "assert $.qty eq 2: got 3");
  xpath_is(doc, "string(//testcase[@name='read_back']/failure/@type)", "failed");
  xpath_is(doc, "string(//testcase[@name='read_xml']/skipped/@message)",
           "skipped: its predecessors took other edges");
  xpath_is(doc, "count(//testcase[@name='read_xml']/system-out)", "0");
  char *out = xpath(doc, "string(//testcase[@name='create_order']/system-out)");
  contains(out, "attempt 1/3");
  contains(out, "retry in 212 ms");
  contains(out, "order_id = \"ord-17\"");
  free(out);
  out = xpath(doc, "string(//testcase[@name='read_back']/failure)");
  contains(out, "> GET http://h:1/orders/ord-17"); /* details are the verbose block */
  free(out);
  xmlFreeDoc(doc);
  free(xml);
  json_decref(runs);
}

static void test_junit_escapes_markup_and_control_characters(void **st) {
  (void)st;
  json_t *run = load("{'workflow':{'name':'a<b>'},'status':'failed','steps':["
                     " {'task':'t&\\'q\\'','status':'failed',"
                     "  'attempts':[{'extracted':{'x':']]>'}}]}]}");
  json_t *step = json_array_get(json_object_get(run, "steps"), 0);
  json_object_set_new(step, "reason", json_string("bad <&\"> \x01 here\n\ttwo"));
  json_object_set_new(json_object_get(run, "workflow"), "source",
                      json_stringn_nocheck("s\xff\xef\xbf\xbf", 5));
  char *xml = junit_of(run);
  lacks(xml, "\x01");
  contains(xml, "message=\"bad &lt;&amp;&quot;&gt; \xef\xbf\xbd here&#10;&#9;two\"");
  xmlDocPtr doc = parse_xml(xml);
  xpath_is(doc, "string(//testsuite/@name)", "a<b>");
  xpath_is(doc, "string(//testcase/@name)", "t&\"q\"");
  xpath_is(doc, "string(//testcase/@classname)", "restmon.a<b>");
  xpath_is(doc, "string(//failure/@message)", "bad <&\"> \xef\xbf\xbd here\n\ttwo");
  xpath_is(doc, "string(//property[@name='source']/@value)", "s\xef\xbf\xbd\xef\xbf\xbd");
  char *out = xpath(doc, "string(//system-out)");
  contains(out, "x = \"]]>\"");
  free(out);
  xmlFreeDoc(doc);
  free(xml);
  json_decref(run);
}

static void test_junit_numbers_only_the_runs_that_repeat(void **st) {
  (void)st;
  json_t *runs = load("[{'workflow':{'name':'a'}},{'workflow':{'name':'b'}},"
                      " {'workflow':{'name':'a'}},{'workflow':{'name':'a'}}]");
  char *xml = junit_of(runs);
  xmlDocPtr doc = parse_xml(xml);
  xpath_is(doc, "string(//testsuite[1]/@name)", "a #1");
  xpath_is(doc, "string(//testsuite[2]/@name)", "b");
  xpath_is(doc, "string(//testsuite[3]/@name)", "a #2");
  xpath_is(doc, "string(//testsuite[4]/@name)", "a #3");
  xmlFreeDoc(doc);
  free(xml);
  json_decref(runs);
}

static void test_junit_fails_a_failed_run_with_no_failed_step(void **st) {
  (void)st;
  json_t *runs = load("[{'workflow':{'name':'w'},'run_id':'r9','status':'failed',"
                      "  'reason':'definition error: task x has no url','steps':[]},"
                      " {'workflow':{'name':'v'},'status':'cancelled','reason':'interrupted',"
                      "  'steps':[{'task':'a','status':'cancelled'}]}]");
  char *xml = junit_of(runs);
  xmlDocPtr doc = parse_xml(xml);
  xpath_is(doc, "string(//testsuite[1]/@failures)", "1");
  xpath_is(doc, "string(//testsuite[1]/testcase/@name)", "(workflow)");
  xpath_is(doc, "string(//testsuite[1]/testcase/failure/@message)",
           "definition error: task x has no url");
  xpath_is(doc, "string(//testsuite[1]/testcase/failure)",
           "run r9 failed: definition error: task x has no url");
  xpath_is(doc, "string(//testsuite[2]/@errors)", "1");
  xpath_is(doc, "string(//testsuite[2]/@skipped)", "1");
  xpath_is(doc, "string(//testsuite[2]/testcase[@name='a']/skipped/@message)", "cancelled");
  xpath_is(doc, "string(//testsuite[2]/testcase[@name='(workflow)']/error/@type)", "cancelled");
  xpath_is(doc, "string(/testsuites/@tests)", "3");
  xmlFreeDoc(doc);
  free(xml);
  json_decref(runs);
}

static void test_junit_marks_garbage_as_errors_and_stays_well_formed(void **st) {
  (void)st;
  json_t *runs = load("[{}, 7, null, {'steps':7}, {'steps':[1,{},{'status':'running'}]},"
                      " {'workflow':'w','steps':{'a':1},'duration_ms':'x','started_at':'soon'}]");
  char *xml = junit_of(runs);
  xmlDocPtr doc = parse_xml(xml);
  xpath_is(doc, "count(//testsuite)", "6");
  xpath_is(doc, "string(//testsuite[2]/@name)", "(invalid run record) #1");
  xpath_is(doc, "string(//testsuite[2]/testcase/error/@message)",
           "run record is not a JSON object");
  xpath_is(doc, "string(//testsuite[5]/@errors)", "3");
  xpath_is(doc, "string(//testsuite[5]/testcase[1]/@name)", "(step 1)");
  xpath_is(doc, "string(//testsuite[5]/testcase[3]/error/@message)",
           "unknown step status: running");
  xpath_is(doc, "string(/testsuites/@errors)", "5");
  xpath_is(doc, "count(//testsuite[6]/@timestamp)", "0");
  xmlFreeDoc(doc);
  free(xml);
  json_decref(runs);
}

/* Every field of a full record replaced in turn by values of every other
 * type: each rendering must succeed and the XML must stay well-formed. */
static void render_all(json_t *run) {
  rm_report_opts opts[] = {{false, false, 0}, {true, true, 5}, {false, true, 400}};
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    sink s;
    sink_open(&s);
    assert_int_equal(rm_report_timeline(s.f, run, &opts[i]), 0);
    free(sink_close(&s));
  }
  json_t *runs = json_pack("[O]", run);
  char *xml = junit_of(runs);
  xmlFreeDoc(parse_xml(xml));
  free(xml);
  json_decref(runs);
}

static void mutate_everywhere(json_t *root, json_t *node, json_t *garbage) {
  size_t n = json_is_object(node) ? json_object_size(node) : json_array_size(node);
  const char **keys = calloc(n + 1, sizeof *keys);
  const char *key;
  json_t *v;
  size_t k = 0;
  json_object_foreach(node, key, v) keys[k++] = key;
  for (size_t i = 0; i < n; i++) {
    json_t *orig = json_incref(json_is_object(node) ? json_object_get(node, keys[i])
                                                    : json_array_get(node, i));
    for (size_t g = 0; g < json_array_size(garbage); g++) {
      json_t *bad = json_array_get(garbage, g);
      if (json_is_object(node)) json_object_set(node, keys[i], bad);
      else json_array_set(node, i, bad);
      render_all(root);
    }
    if (json_is_object(node)) json_object_set(node, keys[i], orig);
    else json_array_set(node, i, orig);
    if (json_is_object(orig) || json_is_array(orig)) mutate_everywhere(root, orig, garbage);
    json_decref(orig);
  }
  free(keys);
}

static void test_records_of_unexpected_shape_never_break_rendering(void **st) {
  (void)st;
  json_t *garbage = load("[null, true, -1, 1e300, '', 'x', [], [1, 'a', null], {}, {'a': []}]");
  json_array_append_new(garbage, json_stringn_nocheck("\xff\x01<", 3));
  const char *records[] = {SUCCEEDED, FAILED};
  for (size_t r = 0; r < 2; r++) {
    json_t *run = load(records[r]);
    mutate_everywhere(run, run, garbage);
    json_decref(run);
  }
  json_decref(garbage);
}

/* Figures of a --repeat batch ----------------------------------------------- */

static void test_percentile_is_nearest_rank(void **st) {
  (void)st;
  const double ten[] = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
  assert_true(rm_report_percentile(ten, 10, 50) == 5);
  assert_true(rm_report_percentile(ten, 10, 90) == 9);
  assert_true(rm_report_percentile(ten, 10, 95) == 10);
  assert_true(rm_report_percentile(ten, 10, 99) == 10);
  assert_true(rm_report_percentile(ten, 10, 100) == 10);
  assert_true(rm_report_percentile(ten, 10, 0) == 1);
  assert_true(rm_report_percentile(ten, 10, 10) == 1);
  assert_true(rm_report_percentile(ten, 10, 11) == 2);
  const double five[] = {15, 20, 35, 40, 50}; /* the textbook example */
  assert_true(rm_report_percentile(five, 5, 30) == 20);
  assert_true(rm_report_percentile(five, 5, 40) == 20);
  assert_true(rm_report_percentile(five, 5, 50) == 35);
  const double one[] = {42};
  assert_true(rm_report_percentile(one, 1, 99) == 42);
  assert_true(rm_report_percentile(NULL, 0, 50) == 0);
  double hundred[100];
  for (int i = 0; i < 100; i++) hundred[i] = 100 - i;
  assert_true(rm_report_percentile(hundred, 100, 95) == 95);
  assert_true(rm_report_percentile(hundred, 100, 99) == 99);
}

static void test_percentile_leaves_input_alone_and_skips_nan(void **st) {
  (void)st;
  double v[] = {3, NAN, 1, INFINITY, 2};
  assert_true(rm_report_percentile(v, 5, 100) == 3);
  assert_true(rm_report_percentile(v, 5, 50) == 2);
  assert_true(v[0] == 3 && isnan(v[1]) && v[2] == 1 && isinf(v[3]) && v[4] == 2);
  const double none[] = {NAN};
  assert_true(rm_report_percentile(none, 1, 50) == 0);
}

static char *summary_of(const rm_repeat_stats *s, bool color) {
  sink k;
  sink_open(&k);
  assert_int_equal(rm_report_repeat_summary(k.f, s, color), 0);
  return sink_close(&k);
}

static void test_summary_of_zero_runs_does_not_divide_by_zero(void **st) {
  (void)st;
  rm_repeat_stats s = {0, 0, 0, 0, 0, 0, 0, NULL};
  char *out = summary_of(&s, false);
  contains(out, "0 runs in 0.0 ms\n");
  contains(out, "  throughput           -\n");
  contains(out, "  cpu                  -\n");
  contains(out, "  latency              -\n");
  lacks(out, "nan");
  lacks(out, "inf");
  free(out);
}

static void test_summary_shows_aligned_counts_rates_and_latency(void **st) {
  (void)st;
  double d[10] = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
  rm_repeat_stats s = {10, 7, 1, 2, 0, 2000, 50, d};
  char *out = summary_of(&s, false);
  assert_string_equal(out,
                      "10 runs in 2.00 s\n"
                      "  succeeded            7\n"
                      "  degraded             1\n"
                      "  failed               2\n"
                      "  errors               0\n"
                      "  throughput         5.0 runs/s\n"
                      "  cpu               5.00 ms/run\n"
                      "  latency ms         p50       p90       p95       p99       max\n"
                      "                    5.00      9.00     10.00     10.00     10.00\n");
  assert_true(d[0] == 10 && d[1] == 1);
  free(out);
  out = summary_of(&s, true);
  contains(out, "\033[31m         2\033[0m");
  free(out);
}

static void test_progress_overwrites_the_line_and_clears_the_rest(void **st) {
  (void)st;
  sink s;
  sink_open(&s);
  rm_report_progress(s.f, 37, 1000, 12, 89.8);
  rm_report_progress(s.f, 0, 10, 0, 0);
  rm_report_progress(s.f, 10, 10, 1, 1000);
  rm_report_progress(s.f, 1, 100000, 0, 1000);
  char *out = sink_close(&s);
  assert_string_equal(out,
                      "\r  37/1000 runs  12 failed  412.0 runs/s  ETA 3s\033[K"
                      "\r  0/10 runs  0 failed  0.0 runs/s  ETA -\033[K"
                      "\r  10/10 runs  1 failed  10.0 runs/s  ETA 0s\033[K"
                      "\r  1/100000 runs  0 failed  1.0 runs/s  ETA 27h46m\033[K");
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timeline_succeeded_run_shows_exchange_duration_and_variables),
      cmocka_unit_test(test_timeline_shows_every_retry_with_reason_and_delay),
      cmocka_unit_test(test_timeline_failed_step_shows_failed_assertion_and_reason),
      cmocka_unit_test(test_timeline_skipped_step_shows_why),
      cmocka_unit_test(test_timeline_marks_dry_run_and_unsent_requests),
      cmocka_unit_test(test_timeline_shortens_long_values),
      cmocka_unit_test(test_timeline_colours_only_when_asked),
      cmocka_unit_test(test_timeline_verbose_adds_heads_bodies_and_passed_assertions),
      cmocka_unit_test(test_timeline_verbose_cuts_bodies_at_the_preview_length),
      cmocka_unit_test(test_timeline_verbose_shows_first_lines_of_output),
      cmocka_unit_test(test_timeline_shows_each_exchange_of_a_multi_request_attempt),
      cmocka_unit_test(test_timeline_neutralises_terminal_control_sequences),
      cmocka_unit_test(test_timeline_of_empty_record_says_unknown),
      cmocka_unit_test(test_timeline_rejects_what_is_not_a_record),
      cmocka_unit_test(test_junit_is_well_formed_with_counts),
      cmocka_unit_test(test_junit_escapes_markup_and_control_characters),
      cmocka_unit_test(test_junit_numbers_only_the_runs_that_repeat),
      cmocka_unit_test(test_junit_fails_a_failed_run_with_no_failed_step),
      cmocka_unit_test(test_junit_marks_garbage_as_errors_and_stays_well_formed),
      cmocka_unit_test(test_records_of_unexpected_shape_never_break_rendering),
      cmocka_unit_test(test_percentile_is_nearest_rank),
      cmocka_unit_test(test_percentile_leaves_input_alone_and_skips_nan),
      cmocka_unit_test(test_summary_of_zero_runs_does_not_divide_by_zero),
      cmocka_unit_test(test_summary_shows_aligned_counts_rates_and_latency),
      cmocka_unit_test(test_progress_overwrites_the_line_and_clears_the_rest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
