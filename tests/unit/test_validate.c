#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/validate.h"

/* Workflows below are written with ' for " to stay readable. */
static const char http_manifest[] =
    "{'name':'http','description':'One HTTP request','version':'1','fields':["
    "{'name':'method','type':'text','default':'GET','label':'Method',"
    " 'options':['GET','POST','PUT','PATCH','DELETE','HEAD','OPTIONS']},"
    "{'name':'url','type':'text','required':true},"
    "{'name':'headers','type':'map'},{'name':'query','type':'map'},"
    "{'name':'body','type':'text'},{'name':'json','type':'json'},"
    "{'name':'form','type':'map'},{'name':'auth','type':'object'},"
    "{'name':'tls_verify','type':'boolean','default':true},"
    "{'name':'follow_redirects','type':'boolean'},"
    "{'name':'max_redirects','type':'number'},"
    "{'name':'max_response_bytes','type':'number'},"
    "{'name':'http_version','type':'text','options':['1.1','2']}]}";

/* A second plugin, to reach every manifest field type. */
static const char probe_manifest[] =
    "{'name':'probe','fields':["
    "{'name':'target','type':'text','required':true},"
    "{'name':'day','type':'date'},{'name':'at','type':'time'},"
    "{'name':'when','type':'datetime'},{'name':'hosts','type':'list'},"
    "{'name':'count','type':'number'},{'name':'strict','type':'boolean'},"
    "{'name':'token','type':'password'},{'name':'labels','type':'map'},"
    "{'name':'extra','type':'object'},{'name':'payload','type':'json'}]}";

typedef struct plugins {
  json_t *http;
  json_t *probe;
} plugins;

static json_t *parse(const char *src) {
  char *s = strdup(src);
  assert_non_null(s);
  for (char *p = s; *p; p++)
    if (*p == '\'') *p = '"';
  json_error_t e;
  json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
  if (!v) fail_msg("bad test JSON at %d: %s\n%s", e.position, e.text, s);
  free(s);
  return v;
}

static const json_t *lookup(void *ud, const char *type) {
  plugins *p = ud;
  if (strcmp(type, "http") == 0) return p->http;
  if (strcmp(type, "probe") == 0) return p->probe;
  return NULL;
}

static int setup(void **state) {
  plugins *p = calloc(1, sizeof *p);
  p->http = parse(http_manifest);
  p->probe = parse(probe_manifest);
  *state = p;
  return 0;
}

static int teardown(void **state) {
  plugins *p = *state;
  json_decref(p->http);
  json_decref(p->probe);
  free(p);
  return 0;
}

/* Validates src with the given inputs and secret names (JSON or NULL). */
static json_t *check_with(void **state, const char *src, const char *given, const char *secrets) {
  json_t *wf = parse(src);
  json_t *g = given ? parse(given) : NULL;
  json_t *s = secrets ? parse(secrets) : NULL;
  rm_validate_opts o = {lookup, *state, g, s};
  json_t *problems = rm_workflow_validate(wf, &o);
  assert_non_null(problems);
  json_decref(wf);
  json_decref(g);
  json_decref(s);
  return problems;
}

static json_t *check(void **state, const char *src) { return check_with(state, src, NULL, NULL); }

static void dump(const json_t *problems) {
  char *s = json_dumps(problems, JSON_INDENT(1));
  print_error("problems: %s\n", s);
  free(s);
}

static int matches(const json_t *p, const char *path, const char *message, int exact) {
  const char *pp = json_string_value(json_object_get(p, "path"));
  const char *pm = json_string_value(json_object_get(p, "message"));
  return strcmp(pp, path) == 0 && (exact ? strcmp(pm, message) == 0 : strstr(pm, message) != NULL);
}

/* Asserts a problem at path whose message equals (or, inexact, contains)
 * message, then removes it so that expect_only can check the rest. */
static void expect_problem(json_t *problems, const char *path, const char *message, int exact) {
  for (size_t i = 0; i < json_array_size(problems); i++)
    if (matches(json_array_get(problems, i), path, message, exact)) {
      json_array_remove(problems, i);
      return;
    }
  dump(problems);
  fail_msg("no problem at '%s' with message %s '%s'", path, exact ? "" : "containing", message);
}

static void expect_exact(json_t *problems, const char *path, const char *message) {
  expect_problem(problems, path, message, 1);
}

static void expect_has(json_t *problems, const char *path, const char *part) {
  expect_problem(problems, path, part, 0);
}

/* No problems remain; frees the array. */
static void expect_none(json_t *problems) {
  if (json_array_size(problems)) {
    dump(problems);
    fail_msg("%zu unexpected problem(s)", json_array_size(problems));
  }
  json_decref(problems);
}

/* A workflow of one task `t` with the given task body (without braces). */
static json_t *check_task(void **state, const char *task_fields) {
  char src[4096];
  snprintf(src, sizeof src, "{'name':'w','tasks':{'t':{'type':'http',%s}}}", task_fields);
  return check(state, src);
}

static const char valid_workflow[] =
    "{'$schema':'../docs/workflow.schema.json','name':'order-transaction','version':3,"
    " 'description':'Log in, create an order, read it back as JSON and XML',"
    " 'inputs':{'base_url':{'type':'string','default':'http://127.0.0.1:8900'},"
    "           'username':{'type':'string','required':true},"
    "           'qty':{'type':'integer','default':2,'description':'items'}},"
    " 'defaults':{'timeout_ms':5000,'retry':{'max_attempts':2},'tls_verify':true},"
    " 'tasks':{"
    "  'login':{'type':'http',"
    "   'request':{'method':'POST','url':'{{inputs.base_url}}/login',"
    "     'json':{'username':'{{inputs.username}}','password':'{{secrets.api_password}}'}},"
    "   'extract':{'token':'$.token'},"
    "   'assert':[{'from':'status','op':'eq','value':200}],"
    "   'on_success':['create_order'],'on_failure':['diagnose_login']},"
    "  'diagnose_login':{'type':'http','request':{'url':'{{inputs.base_url}}/health'},"
    "   'assert':[{'jsonpath':'$.status','op':'eq','value':'ok'}]},"
    "  'create_order':{'type':'http','idempotent':true,'timeout_ms':2000,"
    "   'retry':{'max_attempts':3,'backoff_ms':200,'multiplier':2.0,'max_backoff_ms':10000,"
    "            'jitter':0.2,'retry_on':['error','5xx']},"
    "   'request':{'method':'POST','url':'{{inputs.base_url}}/orders',"
    "     'headers':{'Authorization':'Bearer {{vars.token}}',"
    "                'Idempotency-Key':'{{idempotency_key}}'},"
    "     'json':{'qty':'{{inputs.qty}}','ref':'{{uuid}}','at':'{{now}}'},"
    "     'max_redirects':'{{inputs.qty}}','follow_redirects':true},"
    "   'extract':{'order_id':{'jsonpath':'$.id'},"
    "              'location':{'from':'header','name':'Location','regex':'/orders/(?<id>\\\\w+)',"
    "                          'group':'id','optional':true},"
    "              'code':{'from':'status','type':'integer'},"
    "              'took':{'from':'duration_ms'},"
    "              'n':{'lua':'return #json.decode(response.body).items','default':0},"
    "              'ids':{'regex':'id=(\\\\d+)','group':1,'all':true}},"
    "   'assert':[{'var':'order_id','op':'exists'},"
    "             {'jsonpath':'$.qty','op':'eq','value':'{{inputs.qty}}','message':'qty echoed'},"
    "             {'jsonpath':'$.total','op':'gt','value':0,'severity':'degraded'},"
    "             {'jsonpath':'$.total','op':'le','value':'{{inputs.qty}}'},"
    "             {'jsonpath':'$.items','op':'contains','value':{'sku':'A-1'}},"
    "             {'jsonpath':'$.id','op':'matches','value':'^ord-\\\\d+$'},"
    "             {'jsonpath':'$.note','op':'not_exists'},"
    "             {'jsonpath':'$.items','op':'type','value':'array'},"
    "             {'from':'header','name':'Content-Type','op':'contains','value':'json'},"
    "             {'lua':'return true','op':'eq','value':true},"
    "             {'var':'order_id','op':'ne','value':'{{vars.token}}'}],"
    "   'status':{'success_codes':[200,201,'2xx','300-302'],'degraded_codes':[429],"
    "             'degraded_over_ms':800,'failed_over_ms':5000,"
    "             'lua':'if vars.n == 0 then return [[degraded]], [[empty]] end'},"
    "   'sample_response':{'status':201,'headers':{'Location':'/orders/ord-1'},"
    "                      'body':{'id':'ord-1','qty':'{{inputs.qty}}'},'duration_ms':12},"
    "   'on_success':['read_json','read_xml']},"
    "  'read_json':{'type':'http',"
    "   'request':{'url':'{{inputs.base_url}}/orders/{{vars.order_id}}',"
    "     'query':{'fields':'all'},'auth':{'type':'bearer','token':'{{vars.token}}'}},"
    "   'output':{'format':'csv','from':'$.items[*]','fields':{'sku':'$.sku','qty':'$.qty'}},"
    "   'on_success':['report']},"
    "  'read_xml':{'type':'http',"
    "   'request':{'url':'{{inputs.base_url}}/orders/{{vars.order_id}}.xml',"
    "     'headers':{'Accept':'application/xml'},"
    "     'auth':{'type':'api_key','query':'api_key','value':'{{secrets.api_key}}'}},"
    "   'extract':{'xml_id':{'xpath':'/order/id'}},"
    "   'output':{'format':'xml','fields':['order_id','xml_id'],'root':'orders','item':'order'},"
    "   'on_success':['report'],'on_failure':['report'],'continue_on_failure':false},"
    "  'report':{'type':'http','join':'all',"
    "   'request':{'method':'PUT','url':'{{inputs.base_url}}/report/{{vars.xml_id}}',"
    "     'body':'{{vars.order_id}} {{run_id}} {{task}} {{attempt}} {{now_unix}} {{now_unix_ms}}',"
    "     'auth':{'type':'hmac_sha256','secret':'{{secrets.api_key}}',"
    "             'header':'X-Signature','prefix':'sha256='},"
    "     'http_version':'2','max_response_bytes':1048576,'tls_verify':'{{inputs.tls}}'},"
    "   'output':{'format':'json'}}}}";

static void test_validate_accepts_valid_multi_branch_workflow(void **state) {
  expect_none(check_with(state, valid_workflow, "{'username':'ann','tls':true}",
                         "['api_password','API_KEY']"));
}

static void test_validate_accepts_valid_workflow_without_options(void **state) {
  (void)state;
  json_t *wf = parse(valid_workflow);
  json_t *problems = rm_workflow_validate(wf, NULL);
  json_decref(wf);
  /* Without a plugin lookup or given inputs, only {{inputs.tls}} is unknown. */
  expect_exact(problems, "tasks.report.request.tls_verify",
               "{{inputs.tls}}: input 'tls' is not declared in 'inputs'");
  expect_none(problems);
}

static void test_validate_rejects_non_object_workflow(void **state) {
  json_t *p = check(state, "[1]");
  expect_exact(p, "", "a workflow must be a JSON object, not an array");
  expect_none(p);
}

static void test_validate_reports_unknown_field_with_allowed_names(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x'},'retires':{'max_attempts':2}");
  expect_exact(p, "tasks.t.retires",
               "unknown field 'retires' (allowed: type, description, request, timeout_ms, retry, "
               "idempotent, extract, assert, status, output, on_success, on_failure, "
               "continue_on_failure, join, sample_response)");
  expect_none(p);
}

static void test_validate_reports_unknown_top_level_field(void **state) {
  json_t *p = check(
      state, "{'name':'w','taks':{},'tasks':{'t':{'type':'http','request':{'url':'http://x'}}}}");
  expect_has(p, "taks", "unknown field 'taks' (allowed: $schema, name, description, version,");
  expect_none(p);
}

static void test_validate_requires_name_and_tasks(void **state) {
  json_t *p = check(state, "{'description':'x'}");
  expect_exact(p, "", "missing required field 'name'");
  expect_exact(p, "", "missing required field 'tasks'");
  expect_none(p);
}

static void test_validate_rejects_bad_workflow_name(void **state) {
  json_t *p = check(
      state, "{'name':'my flow!','tasks':{'t':{'type':'http','request':{'url':'http://x'}}}}");
  expect_has(p, "name", "'my flow!' must be non-empty and use only letters, digits");
  expect_none(p);
}

static void test_validate_rejects_wrong_field_types(void **state) {
  json_t *p = check(state, "{'name':'w','version':1.5,'tasks':{'t':{'type':7,'on_success':'u',"
                           "'idempotent':'yes','extract':[]}}}");
  expect_exact(p, "version", "must be a string or an integer, not a number");
  expect_exact(p, "tasks.t.type", "must be a string, not an integer");
  expect_exact(p, "tasks.t.on_success", "must be an array, not a string");
  expect_exact(p, "tasks.t.idempotent", "must be a boolean, not a string");
  expect_exact(p, "tasks.t.extract", "must be an object, not an array");
  expect_none(p);
}

static void test_validate_rejects_timeout_out_of_range(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x'},'timeout_ms':0");
  expect_exact(p, "tasks.t.timeout_ms", "must be between 1 and 3600000, not 0");
  expect_none(p);
}

static void test_validate_rejects_bad_task_name(void **state) {
  json_t *p =
      check(state, "{'name':'w','tasks':{'9 lives':{'type':'http','request':{'url':'http://x'}}}}");
  expect_exact(p, "tasks.9 lives", "task name '9 lives' must match [A-Za-z_][A-Za-z0-9_-]*");
  expect_none(p);
}

static void test_validate_rejects_empty_tasks(void **state) {
  json_t *p = check(state, "{'name':'w','tasks':{}}");
  expect_exact(p, "tasks", "must hold at least one task");
  expect_none(p);
}

static void test_validate_rejects_unknown_task_type(void **state) {
  json_t *p =
      check(state, "{'name':'w','tasks':{'t':{'type':'htp','request':{'url':'http://x'}}}}");
  expect_exact(p, "tasks.t.type", "unknown task type 'htp' (no plugin of that name is installed)");
  expect_none(p);
}

static void test_validate_rejects_unknown_request_field(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x','hedaers':{}}");
  expect_exact(p, "tasks.t.request.hedaers",
               "unknown field 'hedaers' (allowed: method, url, headers, query, body, json, form, "
               "auth, tls_verify, follow_redirects, max_redirects, max_response_bytes, "
               "http_version)");
  expect_none(p);
}

static void test_validate_requires_plugin_required_fields(void **state) {
  json_t *p = check(state, "{'name':'w','tasks':{'a':{'type':'http','request':{'method':'GET'},"
                           "'on_success':['b']},'b':{'type':'http'}}}");
  expect_exact(p, "tasks.a.request", "missing required field 'url'");
  expect_exact(p, "tasks.b", "missing field 'request' (type 'http' requires: url)");
  expect_none(p);
}

static void test_validate_checks_request_field_types(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x','headers':{'X-Count':5},"
                                "'tls_verify':'yes','max_redirects':'{{inputs.n}}',"
                                "'follow_redirects':'{{inputs.f}} ','body':{'a':1},'query':[]}");
  expect_exact(p, "tasks.t.request.headers.X-Count", "must be a string, not an integer");
  expect_exact(p, "tasks.t.request.tls_verify",
               "must be a boolean or a {{...}} placeholder, not a string");
  expect_exact(p, "tasks.t.request.follow_redirects",
               "must be a boolean or a {{...}} placeholder, not a string");
  expect_exact(p, "tasks.t.request.body", "must be a string, not an object");
  expect_exact(p, "tasks.t.request.query",
               "must be an object or a {{...}} placeholder, not an array");
  expect_exact(p, "tasks.t.request.max_redirects",
               "{{inputs.n}}: input 'n' is not declared in 'inputs'");
  expect_exact(p, "tasks.t.request.follow_redirects",
               "{{inputs.f}}: input 'f' is not declared in 'inputs'");
  expect_none(p);
}

static void test_validate_checks_manifest_field_types(void **state) {
  json_t *p = check(
      state, "{'name':'w','tasks':{'ok':{'type':'probe','request':{'target':'x',"
             "'day':'2024-02-29','at':'23:59:60','when':'2024-01-01T10:00:00.5+02:00',"
             "'hosts':['a'],'count':2.5,'strict':false,'token':'{{secrets.t}}',"
             "'labels':{'a':'b'},'extra':{'x':[1]},'payload':null},'on_success':['bad']},"
             "'bad':{'type':'probe','request':{'target':1,"
             "'day':'2023-02-29','at':'24:00','when':'2024-01-01 10:00',"
             "'hosts':'a','count':'2','strict':1,'token':false,'labels':{'a':1},'extra':'x'}}}}");
  expect_exact(p, "tasks.bad.request.target", "must be a string, not an integer");
  expect_exact(p, "tasks.bad.request.day", "'2023-02-29' is not a date (YYYY-MM-DD)");
  expect_exact(p, "tasks.bad.request.at", "'24:00' is not a time (HH:MM or HH:MM:SS)");
  expect_exact(p, "tasks.bad.request.when",
               "'2024-01-01 10:00' is not a date and time (YYYY-MM-DDTHH:MM:SSZ)");
  expect_exact(p, "tasks.bad.request.hosts",
               "must be an array or a {{...}} placeholder, not a string");
  expect_exact(p, "tasks.bad.request.count",
               "must be a number or a {{...}} placeholder, not a string");
  expect_exact(p, "tasks.bad.request.strict",
               "must be a boolean or a {{...}} placeholder, not an integer");
  expect_exact(p, "tasks.bad.request.token", "must be a string, not a boolean");
  expect_exact(p, "tasks.bad.request.labels.a", "must be a string, not an integer");
  expect_exact(p, "tasks.bad.request.extra",
               "must be an object or a {{...}} placeholder, not a string");
  expect_none(p);
}

static void test_validate_rejects_option_not_in_manifest(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x','method':'GTE','http_version':'3'}");
  expect_exact(p, "tasks.t.request.method",
               "must be one of: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS (not 'GTE')");
  expect_exact(p, "tasks.t.request.http_version", "must be one of: 1.1, 2 (not '3')");
  expect_none(p);
}

static void test_validate_rejects_more_than_one_body(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x','body':'a','json':{},'form':{}}");
  expect_exact(p, "tasks.t.request",
               "use at most one of body, json and form (found: body, json, form)");
  expect_none(p);
}

static void test_validate_rejects_url_without_http_scheme(void **state) {
  json_t *p = check_task(state, "'request':{'url':'ftp://x','headers':{'Bad Name':'v'}}");
  expect_exact(p, "tasks.t.request.url", "'ftp://x' must start with http:// or https://");
  expect_exact(p, "tasks.t.request.headers", "'Bad Name' is not a valid header name");
  expect_none(p);
}

static void test_validate_checks_auth_fields(void **state) {
  json_t *p =
      check(state, "{'name':'w','tasks':{"
                   "'a':{'type':'http','request':{'url':'http://"
                   "x','auth':{'type':'digest'}},'on_success':['b','c','d']},"
                   "'b':{'type':'http','request':{'url':'http://"
                   "x','auth':{'type':'basic','username':'u','pass':'p'}}},"
                   "'c':{'type':'http','request':{'url':'http://"
                   "x','auth':{'type':'api_key','value':'v','header':'X-K','query':'k'}}},"
                   "'d':{'type':'http','request':{'url':'http://x','auth':{'token':'t'}}}}}");
  expect_exact(p, "tasks.a.request.auth.type",
               "must be one of: basic, bearer, api_key, hmac_sha256 (not 'digest')");
  expect_exact(p, "tasks.b.request.auth.pass",
               "unknown field 'pass' (allowed: type, username, password)");
  expect_exact(p, "tasks.b.request.auth", "missing required field 'password'");
  expect_exact(p, "tasks.c.request.auth", "use either 'header' or 'query', not both");
  expect_exact(p, "tasks.d.request.auth",
               "missing required field 'type' (one of: basic, bearer, api_key, hmac_sha256)");
  expect_none(p);
}

static void test_validate_rejects_invalid_jsonpath(void **state) {
  json_t *p = check_task(
      state, "'request':{'url':'http://x'},'extract':{'a':'$.items[','b':{'jsonpath':'items'}}");
  expect_has(p, "tasks.t.extract.a", "invalid JSONPath '$.items[': ");
  expect_has(p, "tasks.t.extract.b.jsonpath", "invalid JSONPath 'items': ");
  expect_none(p);
}

static void test_validate_rejects_invalid_regex(void **state) {
  json_t *p =
      check_task(state, "'request':{'url':'http://x'},'extract':{"
                        "'a':{'regex':'id=(\\\\d+'},'b':{'regex':'(a)(b)','group':3},"
                        "'c':{'regex':'(?<x>a)','group':'y'},'d':{'jsonpath':'$.a','group':1}}");
  expect_has(p, "tasks.t.extract.a.regex", "invalid regex at offset 7: ");
  expect_exact(p, "tasks.t.extract.b.group",
               "group 3 does not exist (the pattern has 2 capture groups)");
  expect_exact(p, "tasks.t.extract.c.group", "the pattern has no group named 'y'");
  expect_exact(p, "tasks.t.extract.d.group", "applies only with 'regex'");
  expect_none(p);
}

static void test_validate_rejects_invalid_xpath(void **state) {
  json_t *p =
      check_task(state, "'request':{'url':'http://x'},'extract':{'a':{'xpath':'/order/[id'}}");
  expect_has(p, "tasks.t.extract.a.xpath", "invalid XPath '/order/[id': ");
  expect_none(p);
}

static void test_validate_rejects_lua_syntax_error(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x'},'extract':{'a':{'lua':'return 1 +'}},"
                                "'status':{'lua':'if x then'}");
  expect_exact(p, "tasks.t.extract.a.lua",
               "Lua syntax error on line 1: unexpected symbol near '<eof>'");
  expect_has(p, "tasks.t.status.lua", "Lua syntax error on line 1: 'end' expected");
  expect_none(p);
}

static void test_validate_checks_extract_rule_sources(void **state) {
  json_t *p =
      check_task(state, "'request':{'url':'http://x'},'extract':{"
                        "'none':{'optional':true},'two':{'jsonpath':'$.a','xpath':'/a'},"
                        "'mixed':{'jsonpath':'$.a','regex':'a'},'hdr':{'from':'header'},"
                        "'stray':{'from':'status','name':'X'},'src':{'from':'body'},"
                        "'conv':{'jsonpath':'$.a','type':'float'},'bad name':'$.a','num':5}");
  expect_exact(p, "tasks.t.extract.none",
               "needs a source: one of jsonpath, xpath, regex, from or lua");
  expect_exact(
      p, "tasks.t.extract.two",
      "has more than one source (jsonpath, xpath): use one of jsonpath, xpath, regex, from or lua");
  expect_exact(
      p, "tasks.t.extract.mixed",
      "'regex' cannot be combined with 'jsonpath' (it may only follow {\"from\": \"header\"})");
  expect_exact(p, "tasks.t.extract.hdr", "{\"from\": \"header\"} needs 'name' (the header)");
  expect_exact(p, "tasks.t.extract.stray.name", "applies only to {\"from\": \"header\"}");
  expect_exact(p, "tasks.t.extract.src.from",
               "must be one of: header, status, duration_ms (not 'body')");
  expect_exact(p, "tasks.t.extract.conv.type",
               "must be one of: string, number, integer, boolean (not 'float')");
  expect_exact(p, "tasks.t.extract.bad name",
               "variable name 'bad name' must match [A-Za-z_][A-Za-z0-9_-]*");
  expect_exact(p, "tasks.t.extract.num",
               "must be a JSONPath string or a rule object, not an integer");
  expect_none(p);
}

static void test_validate_rejects_unknown_assertion_op(void **state) {
  json_t *p = check_task(
      state, "'request':{'url':'http://x'},'assert':[{'jsonpath':'$.a','op':'equals','value':1}]");
  expect_exact(
      p, "tasks.t.assert[0].op",
      "must be one of: eq, ne, lt, le, gt, ge, contains, matches, exists, not_exists, type "
      "(not 'equals')");
  expect_none(p);
}

static void test_validate_checks_assertion_values(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x'},'assert':["
                                "{'jsonpath':'$.a','op':'lt','value':'ten'},"
                                "{'jsonpath':'$.a','op':'exists','value':true},"
                                "{'jsonpath':'$.a','op':'type','value':'float'},"
                                "{'jsonpath':'$.a','op':'eq'},"
                                "{'jsonpath':'$.a','op':'matches','value':'(unclosed'},"
                                "{'jsonpath':'$.a','value':1,'severity':'fatal'},"
                                "{'op':'exists'}]");
  expect_exact(p, "tasks.t.assert[0].value",
               "op 'lt' compares numbers: must be a number, not a string");
  expect_exact(p, "tasks.t.assert[1].value", "op 'exists' takes no 'value'");
  expect_exact(
      p, "tasks.t.assert[2].value",
      "must be one of: string, number, integer, boolean, array, object, null (not 'float')");
  expect_exact(p, "tasks.t.assert[3]", "op 'eq' needs a 'value'");
  expect_has(p, "tasks.t.assert[4].value", "invalid regex at offset 9: ");
  expect_exact(p, "tasks.t.assert[5]", "missing required field 'op'");
  expect_exact(p, "tasks.t.assert[5].severity", "must be one of: failed, degraded (not 'fatal')");
  expect_exact(p, "tasks.t.assert[6]",
               "needs a source: one of jsonpath, xpath, regex, from, lua or var");
  expect_none(p);
}

static void test_validate_rejects_bad_status_code_patterns(void **state) {
  json_t *p = check_task(
      state, "'request':{'url':'http://x'},'status':{"
             "'success_codes':['2xy',600,'300-200','6xx',true,'200'],"
             "'degraded_codes':['099-100'],'degraded_over_ms':900,'failed_over_ms':800}");
  expect_exact(
      p, "tasks.t.status.success_codes[0]",
      "'2xy' is not a status code pattern: use an integer 100-599, \"2xx\" or \"200-299\"");
  expect_exact(p, "tasks.t.status.success_codes[1]", "600 is not an HTTP status code (100-599)");
  expect_has(p, "tasks.t.status.success_codes[2]", "'300-200' is not a status code pattern");
  expect_has(p, "tasks.t.status.success_codes[3]", "'6xx' is not a status code pattern");
  expect_exact(p, "tasks.t.status.success_codes[4]",
               "must be an integer 100-599, \"2xx\" or \"200-299\", not a boolean");
  expect_has(p, "tasks.t.status.success_codes[5]", "'200' is not a status code pattern");
  expect_has(p, "tasks.t.status.degraded_codes[0]", "'099-100' is not a status code pattern");
  expect_exact(p, "tasks.t.status.degraded_over_ms", "900 must be less than failed_over_ms (800)");
  expect_none(p);
}

static void test_validate_checks_retry_fields(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x'},'retry':{'max_attempts':0,'jitter':2,"
                                "'multiplier':0.5,'backoff_ms':500,'max_backoff_ms':100,"
                                "'retry_on':['5xx','bogus','5xx',3],'retries':1}");
  expect_exact(p, "tasks.t.retry.max_attempts", "must be between 1 and 100, not 0");
  expect_exact(p, "tasks.t.retry.jitter", "must be between 0 and 1, not 2");
  expect_exact(p, "tasks.t.retry.multiplier", "must be between 1 and 10, not 0.5");
  expect_exact(p, "tasks.t.retry.max_backoff_ms", "100 is less than backoff_ms (500)");
  expect_exact(p, "tasks.t.retry.retry_on[1]",
               "must be one of: error, timeout, 5xx, 4xx, failed, degraded (not 'bogus')");
  expect_exact(p, "tasks.t.retry.retry_on[2]", "'5xx' is listed twice");
  expect_exact(p, "tasks.t.retry.retry_on[3]",
               "must be one of: error, timeout, 5xx, 4xx, failed, degraded (not an integer)");
  expect_has(p, "tasks.t.retry.retries",
             "unknown field 'retries' (allowed: max_attempts, backoff_ms,");
  expect_none(p);
}

static void test_validate_reports_edge_to_unknown_task(void **state) {
  json_t *p = check(
      state, "{'name':'w','tasks':{'create_order':{'type':'http','request':{'url':'http://x'},"
             "'on_success':['read_ordr'],'on_failure':[5]}}}");
  expect_exact(p, "tasks.create_order.on_success[0]", "edge to unknown task 'read_ordr'");
  expect_exact(p, "tasks.create_order.on_failure[0]", "must be a task name, not an integer");
  expect_none(p);
}

static void test_validate_rejects_self_edge(void **state) {
  json_t *p = check(state, "{'name':'w','tasks':{'a':{'type':'http','request':{'url':'http://x'},"
                           "'on_failure':['a']}}}");
  expect_exact(p, "tasks.a.on_failure[0]", "edge from 'a' to itself");
  expect_none(p);
}

static void test_validate_rejects_duplicate_edge(void **state) {
  json_t *p =
      check(state, "{'name':'w','tasks':{'a':{'type':'http','request':{'url':'http://x'},"
                   "'on_success':['b','b']},'b':{'type':'http','request':{'url':'http://x'}}}}");
  expect_exact(p, "tasks.a.on_success[1]", "edge to 'b' is listed twice");
  expect_none(p);
}

static void test_validate_reports_cycle_with_path(void **state) {
  json_t *p =
      check(state, "{'name':'w','tasks':{"
                   "'start':{'type':'http','request':{'url':'http://x'},'on_success':['a']},"
                   "'a':{'type':'http','request':{'url':'http://x'},'on_success':['b']},"
                   "'b':{'type':'http','request':{'url':'http://x'},'on_success':['c']},"
                   "'c':{'type':'http','request':{'url':'http://x'},'on_failure':['a']}}}");
  expect_exact(p, "tasks.c.on_failure[0]", "cycle: a -> b -> c -> a");
  expect_none(p);
}

static void test_validate_reports_each_cycle_once(void **state) {
  json_t *p = check(
      state,
      "{'name':'w','tasks':{"
      "'s':{'type':'http','request':{'url':'http://x'},'on_success':['a','x']},"
      "'a':{'type':'http','request':{'url':'http://x'},'on_success':['b']},"
      "'b':{'type':'http','request':{'url':'http://x'},'on_success':['a'],'on_failure':['s']},"
      "'x':{'type':'http','request':{'url':'http://x'},'on_success':['y']},"
      "'y':{'type':'http','request':{'url':'http://x'},'on_success':['x']}}}");
  expect_exact(p, "tasks.b.on_success[0]", "cycle: a -> b -> a");
  expect_exact(p, "tasks.b.on_failure[0]", "cycle: s -> a -> b -> s");
  expect_exact(p, "tasks.y.on_success[0]", "cycle: x -> y -> x");
  expect_exact(p, "tasks", "no start task: every task has an incoming edge, so none can run first");
  expect_none(p);
}

static void test_validate_requires_a_start_task(void **state) {
  json_t *p = check(state, "{'name':'w','tasks':{"
                           "'a':{'type':'http','request':{'url':'http://x'},'on_success':['b']},"
                           "'b':{'type':'http','request':{'url':'http://x'},'on_failure':['a']}}}");
  expect_exact(p, "tasks", "no start task: every task has an incoming edge, so none can run first");
  expect_exact(p, "tasks.b.on_failure[0]", "cycle: a -> b -> a");
  expect_none(p);
}

static void test_validate_rejects_bad_join(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x'},'join':'both'");
  expect_exact(p, "tasks.t.join", "must be one of: any, all (not 'both')");
  expect_none(p);
}

static void test_validate_checks_sample_response_shape(void **state) {
  json_t *p =
      check_task(state, "'request':{'url':'http://x'},'sample_response':{'status':700,"
                        "'headers':{'X':1},'duration_ms':-1,'latency':3,'body':'{{vars.nope}}'}");
  expect_exact(p, "tasks.t.sample_response.status", "must be between 100 and 599, not 700");
  expect_exact(p, "tasks.t.sample_response.headers.X", "must be a string, not an integer");
  expect_exact(p, "tasks.t.sample_response.duration_ms", "must be between 0 and 3.6e+06, not -1");
  expect_has(p, "tasks.t.sample_response.latency",
             "unknown field 'latency' (allowed: status, headers, body, duration_ms)");
  expect_exact(p, "tasks.t.sample_response.body",
               "{{vars.nope}}: no task upstream of 't' extracts 'nope' (no task extracts it)");
  expect_none(p);
}

static void test_validate_checks_output(void **state) {
  json_t *p =
      check(state, "{'name':'w','tasks':{"
                   "'a':{'type':'http','request':{'url':'http://x'},'on_success':['b','c'],"
                   " 'output':{'format':'yaml'}},"
                   "'b':{'type':'http','request':{'url':'http://x'},"
                   " 'output':{'format':'csv','root':'r','fields':[]}},"
                   "'c':{'type':'http','request':{'url':'http://x'},"
                   " 'output':{'format':'xml','item':'1st','from':'$[','fields':['a','a',3]}}}}");
  expect_exact(p, "tasks.a.output.format", "must be one of: json, csv, xml (not 'yaml')");
  expect_exact(p, "tasks.b.output.root", "applies only to format 'xml'");
  expect_exact(p, "tasks.b.output.fields", "must name at least one field");
  expect_exact(p, "tasks.c.output.item", "'1st' is not an XML element name");
  expect_has(p, "tasks.c.output.from", "invalid JSONPath '$[': ");
  expect_exact(p, "tasks.c.output.fields[1]", "'a' is listed twice");
  expect_exact(p, "tasks.c.output.fields[2]", "must be a non-empty field name, not an integer");
  expect_none(p);
}

static void test_validate_rejects_undeclared_input(void **state) {
  json_t *p =
      check(state, "{'name':'w','inputs':{'base_url':{'type':'string'}},"
                   "'tasks':{'t':{'type':'http','request':{'url':'{{inputs.base_ur}}/x'}}}}");
  expect_exact(p, "tasks.t.request.url",
               "{{inputs.base_ur}}: input 'base_ur' is not declared in 'inputs'");
  expect_none(p);
}

static void test_validate_accepts_given_undeclared_input(void **state) {
  json_t *p = check_with(
      state, "{'name':'w','tasks':{'t':{'type':'http','request':{'url':'{{inputs.base}}/x'}}}}",
      "{'base':'http://h'}", NULL);
  expect_none(p);
}

static const char var_workflow[] =
    "{'name':'w','tasks':{"
    "'login':{'type':'http','request':{'url':'http://x'},'extract':{'token':'$.t'},"
    " 'on_success':['create_order','read_back']},"
    "'create_order':{'type':'http','request':{'url':'http://x','headers':{'A':'{{vars.token}}'}},"
    " 'extract':{'order_id':'$.id'}},"
    "'read_back':{'type':'http','request':{'url':'http://x/{{vars.order_id}}'}}}}";

static void test_validate_rejects_var_not_extracted_upstream(void **state) {
  json_t *p = check(state, var_workflow);
  expect_exact(p, "tasks.read_back.request.url",
               "{{vars.order_id}}: no task upstream of 'read_back' extracts 'order_id' "
               "(extracted by: create_order, which is not upstream)");
  expect_none(p);
}

static void test_validate_rejects_var_nobody_extracts(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x','json':{'a':['{{vars.tokn.x[0]}}']}}");
  expect_exact(p, "tasks.t.request.json.a[0]",
               "{{vars.tokn.x[0]}}: no task upstream of 't' extracts 'tokn' (no task extracts it)");
  expect_none(p);
}

static void test_validate_accepts_var_extracted_through_failure_edge(void **state) {
  json_t *p = check(
      state,
      "{'name':'w','tasks':{"
      "'a':{'type':'http','request':{'url':'http://x'},'extract':{'v':'$.v'},'on_failure':['b']},"
      "'b':{'type':'http','request':{'url':'http://x'},'on_success':['c']},"
      "'c':{'type':'http','request':{'url':'http://x/{{vars.v}}'}}}}");
  expect_none(p);
}

static void test_validate_allows_own_var_only_as_assertion_subject(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x/{{vars.id}}'},'extract':{'id':'$.id'},"
                                "'assert':[{'var':'id','op':'exists'},"
                                "{'jsonpath':'$.b','op':'eq','value':'{{vars.id}}'}]");
  expect_exact(p, "tasks.t.request.url",
               "{{vars.id}}: no task upstream of 't' extracts 'id' "
               "(extracted by: t (this task), which is not upstream)");
  expect_exact(p, "tasks.t.assert[1].value",
               "{{vars.id}}: no task upstream of 't' extracts 'id' "
               "(extracted by: t (this task), which is not upstream)");
  expect_none(p);
}

static void test_validate_checks_assertion_var_subject(void **state) {
  json_t *p =
      check(state, "{'name':'w','tasks':{"
                   "'a':{'type':'http','request':{'url':'http://x'},'on_success':['b']},"
                   "'b':{'type':'http','request':{'url':'http://x'},'extract':{'id':'$.id'},"
                   " 'assert':[{'var':'token','op':'exists'},{'var':'id','op':'exists'},"
                   "           {'var':'bad name','op':'exists'}]},"
                   "'c':{'type':'http','request':{'url':'http://x'},'extract':{'token':'$.t'}}}}");
  expect_exact(p, "tasks.b.assert[0].var",
               "neither 'b' nor any task upstream of it extracts 'token' "
               "(extracted by: c, which is not upstream)");
  expect_exact(p, "tasks.b.assert[2].var", "'bad name' is not a variable name");
  expect_none(p);
}

static void test_validate_rejects_unavailable_secret(void **state) {
  json_t *p = check_with(state,
                         "{'name':'w','tasks':{'t':{'type':'http','request':{'url':'http://x',"
                         "'headers':{'Authorization':'Bearer {{secrets.api_tokn}}'}}}}}",
                         NULL, "['api_token','db.password']");
  expect_exact(p, "tasks.t.request.headers.Authorization",
               "{{secrets.api_tokn}}: no secret 'api_tokn' is available (available: api_token, "
               "db.password)");
  expect_none(p);
}

static void test_validate_rejects_secret_outside_request(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x','method':'{{secrets.m}}'},"
                                "'assert':[{'jsonpath':'$.a','op':'eq','value':'{{secrets.pw}}'}]");
  expect_exact(p, "tasks.t.assert[0].value",
               "{{secrets.pw}}: secrets may be used only in a task's request");
  expect_exact(
      p, "tasks.t.request.method",
      "{{secrets.m}}: secrets may be used only in url, headers, query, body, json, form and auth");
  expect_none(p);
}

static void test_validate_rejects_unknown_helper(void **state) {
  json_t *p = check_task(state, "'request':{'url':'http://x/{{uid}}','body':'{{ vars. }}'}");
  expect_has(p, "tasks.t.request.url", "{{uid}}: unknown helper 'uid' (known: inputs.NAME,");
  expect_exact(p, "tasks.t.request.body", "{{vars.}}: expected a name after 'vars.'");
  expect_none(p);
}

static void test_validate_requires_required_inputs_when_given(void **state) {
  const char *src = "{'name':'w','inputs':{'username':{'type':'string','required':true},"
                    "'region':{'type':'string','required':true,'default':'eu'},"
                    "'qty':{'type':'integer'}},"
                    "'tasks':{'t':{'type':'http','request':{'url':'http://x'}}}}";
  json_t *p = check_with(state, src, "{'qty':'many'}", NULL);
  expect_exact(p, "inputs.username",
               "required input 'username' is not given (pass it with --var username=value)");
  expect_exact(p, "inputs.qty", "the given value is a string, but input 'qty' has type 'integer'");
  expect_none(p);
  expect_none(check(state, src)); /* without given inputs nothing is required yet */
}

static void test_validate_checks_input_declarations(void **state) {
  json_t *p =
      check(state, "{'name':'w','inputs':{'a':{'type':'text'},'b':{'type':'integer','default':'x'},"
                   "'c':{'type':'string','requried':true},'d e':{},'f':'string'},"
                   "'tasks':{'t':{'type':'http','request':{'url':'http://x'}}}}");
  expect_exact(p, "inputs.a.type",
               "must be one of: string, number, integer, boolean, object, array (not 'text')");
  expect_exact(p, "inputs.b.default", "must be of type 'integer', not a string");
  expect_has(p, "inputs.c.requried",
             "unknown field 'requried' (allowed: type, default, required, description)");
  expect_exact(p, "inputs.d e", "input name 'd e' must match [A-Za-z_][A-Za-z0-9_-]*");
  expect_exact(p, "inputs.f", "must be an object, not a string");
  expect_none(p);
}

static void test_validate_checks_defaults(void **state) {
  json_t *p = check(
      state, "{'name':'w','defaults':{'timeout':5,'timeout_ms':0,'retry':{'max_attempts':1000}},"
             "'tasks':{'t':{'type':'http','request':{'url':'http://x'}}}}");
  expect_exact(
      p, "defaults.timeout",
      "unknown field 'timeout' (allowed: timeout_ms, retry, continue_on_failure, tls_verify)");
  expect_exact(p, "defaults.timeout_ms", "must be between 1 and 3600000, not 0");
  expect_exact(p, "defaults.retry.max_attempts", "must be between 1 and 100, not 1000");
  expect_none(p);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_validate_accepts_valid_multi_branch_workflow),
      T(test_validate_accepts_valid_workflow_without_options),
      T(test_validate_rejects_non_object_workflow),
      T(test_validate_reports_unknown_field_with_allowed_names),
      T(test_validate_reports_unknown_top_level_field),
      T(test_validate_requires_name_and_tasks),
      T(test_validate_rejects_bad_workflow_name),
      T(test_validate_rejects_wrong_field_types),
      T(test_validate_rejects_timeout_out_of_range),
      T(test_validate_rejects_bad_task_name),
      T(test_validate_rejects_empty_tasks),
      T(test_validate_rejects_unknown_task_type),
      T(test_validate_rejects_unknown_request_field),
      T(test_validate_requires_plugin_required_fields),
      T(test_validate_checks_request_field_types),
      T(test_validate_checks_manifest_field_types),
      T(test_validate_rejects_option_not_in_manifest),
      T(test_validate_rejects_more_than_one_body),
      T(test_validate_rejects_url_without_http_scheme),
      T(test_validate_checks_auth_fields),
      T(test_validate_rejects_invalid_jsonpath),
      T(test_validate_rejects_invalid_regex),
      T(test_validate_rejects_invalid_xpath),
      T(test_validate_rejects_lua_syntax_error),
      T(test_validate_checks_extract_rule_sources),
      T(test_validate_rejects_unknown_assertion_op),
      T(test_validate_checks_assertion_values),
      T(test_validate_rejects_bad_status_code_patterns),
      T(test_validate_checks_retry_fields),
      T(test_validate_reports_edge_to_unknown_task),
      T(test_validate_rejects_self_edge),
      T(test_validate_rejects_duplicate_edge),
      T(test_validate_reports_cycle_with_path),
      T(test_validate_reports_each_cycle_once),
      T(test_validate_requires_a_start_task),
      T(test_validate_rejects_bad_join),
      T(test_validate_checks_sample_response_shape),
      T(test_validate_checks_output),
      T(test_validate_rejects_undeclared_input),
      T(test_validate_accepts_given_undeclared_input),
      T(test_validate_rejects_var_not_extracted_upstream),
      T(test_validate_rejects_var_nobody_extracts),
      T(test_validate_accepts_var_extracted_through_failure_edge),
      T(test_validate_allows_own_var_only_as_assertion_subject),
      T(test_validate_checks_assertion_var_subject),
      T(test_validate_rejects_unavailable_secret),
      T(test_validate_rejects_secret_outside_request),
      T(test_validate_rejects_unknown_helper),
      T(test_validate_requires_required_inputs_when_given),
      T(test_validate_checks_input_declarations),
      T(test_validate_checks_defaults),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
