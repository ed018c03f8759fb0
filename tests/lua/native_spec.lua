-- The pure C modules (json, jsonpath, xml, re, codec) as plugins see them.
local helper = require "tests.lua.helper"
local native = helper.native
local json, jsonpath, xml, re, codec =
  native.json, native.jsonpath, native.xml, native.re, native.codec

describe("json", function()
  describe("decode", function()
    it("maps objects, arrays and scalars to Lua values", function()
      local v = json.decode('{"s":"x","n":1.5,"i":-3,"t":true,"f":false,"a":[1,2]}')
      assert.same({ s = "x", n = 1.5, i = -3, t = true, f = false, a = { 1, 2 } }, v)
    end)

    it("decodes null as json.null, a light userdata NULL", function()
      local v = json.decode('{"a":null,"b":[null]}')
      assert.equal(json.null, v.a)
      assert.equal(json.null, v.b[1])
      assert.equal("userdata", type(json.null))
    end)

    it("marks arrays with json.array_mt and leaves objects bare", function()
      local v = json.decode('{"arr":[],"obj":{}}')
      assert.equal(json.array_mt, getmetatable(v.arr))
      assert.is_nil(getmetatable(v.obj))
      assert.is_nil(getmetatable(v))
    end)

    it("decodes top-level scalars", function()
      assert.equal(42, json.decode("42"))
      assert.equal("hi", json.decode('"hi"'))
      assert.equal(json.null, json.decode("null"))
    end)

    it("decodes unicode escapes and keeps NUL bytes", function()
      assert.equal("\195\169", json.decode('"\\u00e9"'))
      assert.equal("a\0b", json.decode('"a\\u0000b"'))
    end)

    it("keeps integers beyond 64 bits as numbers instead of failing", function()
      local v = json.decode("[123456789012345678901234]")
      assert.is_true(math.abs(v[1] - 1.2345678901234568e23) < 1e9)
    end)

    it("reports malformed JSON with line and column", function()
      local v, err = json.decode('{"a": 1,\n "b": }')
      assert.is_nil(v)
      assert.matches("^E_PARSE: line 2 column %d+: ", err)
    end)

    it("rejects trailing garbage and empty input", function()
      assert.matches("^E_PARSE: ", select(2, json.decode("[1] x")))
      assert.matches("^E_PARSE: ", select(2, json.decode("")))
    end)

    it("rejects invalid UTF-8 in strings", function()
      local v, err = json.decode('"\255\254"')
      assert.is_nil(v)
      assert.matches("^E_PARSE: ", err)
    end)

    it("refuses nesting deeper than 256 levels", function()
      assert.is_table(json.decode(helper.nested_arrays(256)))
      local v, err = json.decode(helper.nested_arrays(257))
      assert.is_nil(v)
      assert.matches("^E_TOOBIG: .*256", err)
    end)

    it("fails cleanly on very deep nesting", function()
      local v, err = json.decode(helper.nested_arrays(100000))
      assert.is_nil(v)
      assert.matches("^E_", err)
    end)

    it("caps the input size", function()
      local v, err = json.decode(string.rep(" ", 64 * 1024 * 1024 + 1))
      assert.is_nil(v)
      assert.matches("^E_TOOBIG: .*64 MiB", err)
    end)

    it("raises for a wrong argument type", function()
      assert.has_error(function() json.decode({}) end)
      assert.has_error(function() json.decode() end)
    end)
  end)

  describe("encode", function()
    it("writes object keys sorted, at every level", function()
      assert.equal('{"a":2,"b":1,"c":{"y":2,"z":1}}',
        json.encode({ b = 1, a = 2, c = { z = 1, y = 2 } }))
    end)

    it("keeps [] and {} apart through a round trip", function()
      for _, text in ipairs({ "[]", "{}", '{"a":[],"b":{}}', '[[],{},[{}]]' }) do
        assert.equal(text, json.encode(json.decode(text)))
      end
    end)

    it("round-trips null", function()
      assert.equal('{"a":null,"b":[null,1]}', json.encode(json.decode('{"a":null,"b":[null,1]}')))
      assert.equal("null", json.encode(json.null))
      assert.equal("null", json.encode(nil))
    end)

    it("writes integral numbers as integers and others shortest", function()
      assert.equal("1", json.encode(1))
      assert.equal("-7", json.encode(-7))
      assert.equal("0", json.encode(-0.0))
      assert.equal("9007199254740992", json.encode(2 ^ 53))
      assert.equal("0.1", json.encode(0.1))
      assert.equal("1.5", json.encode(1.5))
      assert.equal("1e+300", json.encode(1e300))
      assert.equal(2 ^ 60, json.decode(json.encode(2 ^ 60)))
    end)

    it("refuses NaN and infinity", function()
      local v, err = json.encode({ x = 0 / 0 })
      assert.is_nil(v)
      assert.equal("E_INVALID: NaN at $.x", err)
      assert.equal("E_INVALID: infinity at $[2]", select(2, json.encode({ 1, math.huge })))
    end)

    it("detects cycles and names where", function()
      local t = { a = { b = {} } }
      t.a.b.back = t.a
      local v, err = json.encode(t)
      assert.is_nil(v)
      assert.equal("E_INVALID: cycle at $.a.b.back", err)
    end)

    it("allows the same table twice when it is not a cycle", function()
      local shared = { 1 }
      assert.equal('{"x":[1],"y":[1]}', json.encode({ x = shared, y = shared }))
    end)

    it("names values JSON cannot hold", function()
      assert.equal("E_INVALID: function at $.f", select(2, json.encode({ f = print })))
      assert.equal("E_INVALID: thread at $[1]", select(2, json.encode({ coroutine.create(print) })))
    end)

    it("refuses tables mixing keys and non-string keys in objects", function()
      local v, err = json.encode({ items = { 1, 2, x = 3 } })
      assert.is_nil(v)
      assert.matches("^E_INVALID: key %d of table at %$%.items is not a string$", err)
      assert.matches("is not a string", select(2, json.encode({ [true] = 1 })))
    end)

    it("refuses holes in marked arrays", function()
      local v, err = json.encode(json.array({ 1, nil, 3 }))
      assert.is_nil(v)
      assert.matches("^E_INVALID: array at %$ has holes", err)
    end)

    it("refuses nesting deeper than 256", function()
      local function nest(levels)
        local t = {}
        local cur = t
        for _ = 2, levels do
          cur.x = {}
          cur = cur.x
        end
        return t
      end
      assert.is_string(json.encode(nest(256)))
      local v, err = json.encode(nest(257))
      assert.is_nil(v)
      assert.matches("^E_INVALID: nesting deeper than 256 at %$%.x%.x", err)
    end)

    it("refuses strings and keys that are not UTF-8", function()
      assert.matches("^E_INVALID: invalid UTF%-8 in string at %$%.k", select(2, json.encode({ k = "\255" })))
      assert.matches("^E_INVALID: key .* not valid UTF%-8", select(2, json.encode({ ["\255"] = 1 })))
    end)

    it("escapes control characters and NUL", function()
      assert.equal('"a\\u0000b\\n\\"\\\\"', json.encode('a\0b\n"\\'))
    end)

    it("pretty-prints with two-space indentation", function()
      assert.equal('{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}',
        json.encode({ b = {}, a = { 1, 2 } }, { pretty = true }))
    end)

    it("raises for a wrong options type", function()
      assert.has_error(function() json.encode({}, "pretty") end)
    end)
  end)

  describe("array", function()
    it("marks a table as an array and returns it", function()
      local t = {}
      assert.equal(t, json.array(t))
      assert.equal(json.array_mt, getmetatable(t))
      assert.equal("[]", json.encode(t))
      assert.equal("[]", json.encode(json.array()))
    end)

    it("raises for a non-table", function()
      assert.has_error(function() json.array("x") end)
    end)
  end)

  describe("doc", function()
    it("holds a parsed document that encode writes back", function()
      local d = json.doc('{"b":1,"a":[true]}')
      assert.equal("userdata", type(d))
      assert.equal('{"a":[true],"b":1}', json.encode(d))
      assert.equal("json.doc", getmetatable(d))
    end)

    it("reports malformed text", function()
      local d, err = json.doc("{")
      assert.is_nil(d)
      assert.matches("^E_PARSE: line 1 column %d+: ", err)
    end)
  end)
end)

describe("jsonpath", function()
  local store = [[{"store": {"book": [
    {"author": "Rees", "price": 8.95},
    {"author": "Waugh", "price": 12.99},
    {"author": "Melville", "price": 8.99, "isbn": "0-553-21311-3"}
  ], "bicycle": {"color": "red", "price": 19.95}}}]]

  it("returns matched values as an array", function()
    local r = jsonpath.query(store, "$.store.book[*].author")
    assert.same({ "Rees", "Waugh", "Melville" }, r)
    assert.equal(json.array_mt, getmetatable(r))
  end)

  it("accepts a json.doc so a body is parsed once", function()
    local d = json.doc(store)
    assert.same({ "red" }, jsonpath.query(d, "$.store.bicycle.color"))
    assert.same({ 19.95 }, jsonpath.query(d, "$.store.bicycle.price"))
  end)

  it("evaluates filters", function()
    assert.same({ "Rees", "Melville" }, jsonpath.query(store, "$.store.book[?@.price < 10].author"))
  end)

  it("returns an empty array when nothing matches", function()
    local r = jsonpath.query(store, "$.nothing")
    assert.same({}, r)
    assert.equal("[]", json.encode(r))
  end)

  it("returns matched subtrees in the json representation", function()
    local r = jsonpath.query('{"a":{"b":[],"c":null}}', "$.a")
    assert.equal('[{"b":[],"c":null}]', json.encode(r))
  end)

  it("returns normalized paths", function()
    assert.same({ "$['store']['book'][0]['author']" },
      jsonpath.paths(store, "$.store.book[0].author"))
  end)

  it("reports a bad path with its offset", function()
    local r, err = jsonpath.query(store, "$.store[")
    assert.is_nil(r)
    assert.matches("^E_JSONPATH: at offset %d+: ", err)
    assert.matches("^E_JSONPATH: ", select(2, jsonpath.query(store, "store")))
    assert.matches("^E_JSONPATH: ", select(2, jsonpath.query(store, "$.a\0b")))
  end)

  it("reports a bad document", function()
    local r, err = jsonpath.query("{bad", "$.a")
    assert.is_nil(r)
    assert.matches("^E_PARSE: line 1 column %d+: ", err)
  end)

  it("keeps working past the compiled-query cache bound", function()
    local d = json.doc('{"k7": 7, "k299": 299}')
    for round = 1, 2 do
      for i = 1, 300 do
        local r = assert(jsonpath.query(d, "$['k" .. i .. "']"))
        if i == 7 or i == 299 then assert.same({ i }, r, "round " .. round) end
      end
    end
  end)

  it("raises for wrong argument types", function()
    assert.has_error(function() jsonpath.query({}, "$") end)
    assert.has_error(function() jsonpath.query("{}", nil) end)
  end)
end)

describe("xml", function()
  local feed = [[<?xml version="1.0"?>
<feed xmlns="urn:feed" xmlns:m="urn:meta">
  <entry id="1"><title>One</title><m:score>3</m:score></entry>
  <entry id="2"><title>Two &amp; more</title><m:score>4</m:score></entry>
</feed>]]

  describe("xpath", function()
    it("returns node sets as arrays of string values", function()
      local r = xml.xpath("<r><a>1</a><a>2<b>x</b></a></r>", "//a")
      assert.same({ "1", "2x" }, r)
      assert.equal(json.array_mt, getmetatable(r))
    end)

    it("returns attribute values", function()
      assert.same({ "1", "2" }, xml.xpath('<r><a id="1"/><a id="2"/></r>', "//a/@id"))
    end)

    it("returns numbers, booleans and strings as scalars", function()
      local doc = "<r><a>1</a><a>2</a></r>"
      assert.equal(2, xml.xpath(doc, "count(//a)"))
      assert.equal(3, xml.xpath(doc, "sum(//a)"))
      assert.is_true(xml.xpath(doc, "boolean(//a)"))
      assert.is_false(xml.xpath(doc, "boolean(//z)"))
      assert.equal("1", xml.xpath(doc, "string(//a)"))
    end)

    it("resolves prefixes through the namespaces table", function()
      local ns = { f = "urn:feed", m = "urn:meta" }
      assert.same({ "One", "Two & more" }, xml.xpath(feed, "//f:entry/f:title", ns))
      assert.equal(7, xml.xpath(feed, "sum(//m:score)", ns))
    end)

    it("reports an undeclared prefix as an XPath error", function()
      local r, err = xml.xpath(feed, "//x:entry")
      assert.is_nil(r)
      assert.matches("^E_XPATH: ", err)
    end)

    it("reports malformed XML with its line", function()
      local r, err = xml.xpath("<r>\n<a>\n</r>", "//a")
      assert.is_nil(r)
      assert.matches("^E_PARSE: line 3: ", err)
      assert.matches("^E_PARSE: line %d+: ", select(2, xml.xpath("", "/")))
      assert.matches("^E_PARSE: line %d+: ", select(2, xml.xpath("<r>\255</r>", "/")))
    end)

    it("reports a bad expression", function()
      local r, err = xml.xpath("<r/>", "//[")
      assert.is_nil(r)
      assert.matches("^E_XPATH: ", err)
    end)

    it("refuses external entities (XXE)", function()
      local doc = [[<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>]]
      local r, err = xml.xpath(doc, "string(/r)")
      assert.is_nil(r)
      assert.equal("E_PARSE: line 2: entity declarations are not allowed", err)
    end)

    it("refuses the billion laughs quickly", function()
      local lol = { '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n' }
      for i = 1, 9 do
        local prev = i == 1 and "lol" or ("lol" .. (i - 1))
        lol[#lol + 1] = ('<!ENTITY lol%d "%s">\n'):format(i, ("&" .. prev .. ";"):rep(10))
      end
      lol[#lol + 1] = "]>\n<lolz>&lol9;</lolz>"
      local secs, r, err = helper.timed(function() return xml.xpath(table.concat(lol), "string(/lolz)") end)
      assert.is_nil(r)
      assert.matches("^E_PARSE: .*entity declarations are not allowed", err)
      assert.is_true(secs < 1)
    end)

    it("caps the input size", function()
      local r, err = xml.xpath(string.rep(" ", 64 * 1024 * 1024 + 1), "/")
      assert.is_nil(r)
      assert.matches("^E_TOOBIG: .*64 MiB", err)
    end)

    it("does not fetch an external DTD", function()
      local doc = '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r>ok</r>'
      assert.equal("ok", xml.xpath(doc, "string(/r)"))
    end)

    it("raises for wrong argument types", function()
      assert.has_error(function() xml.xpath(nil, "/") end)
      assert.has_error(function() xml.xpath("<r/>", "/", "ns") end)
      assert.has_error(function() xml.xpath("<r/>", "/", { [1] = "urn:x" }) end)
    end)
  end)

  describe("escape", function()
    it("escapes markup characters", function()
      assert.equal("&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;", xml.escape([[<a href="x">&'</a>]]))
      assert.equal("caf\195\169", xml.escape("caf\195\169"))
    end)

    it("refuses characters XML cannot carry", function()
      assert.equal("E_INVALID: byte 1 at offset 1 is not allowed in XML", select(2, xml.escape("a\1")))
      assert.matches("^E_INVALID: ", select(2, xml.escape("\255")))
    end)
  end)

  describe("encode", function()
    local head = '<?xml version="1.0" encoding="UTF-8"?>\n'

    it("turns objects into elements, arrays into repeated elements", function()
      local out = xml.encode("root", { b = "x<y", a = { 1, 2 }, c = { d = true }, e = json.null, f = 1.5 })
      assert.equal(head .. "<root><a>1</a><a>2</a><b>x&lt;y</b><c><d>true</d></c><e/><f>1.5</f></root>", out)
    end)

    it("writes a root array as item children", function()
      assert.equal(head .. "<list><item>a</item><item>b</item></list>", xml.encode("list", { "a", "b" }))
    end)

    it("produces XML that parses back", function()
      local out = assert(xml.encode("r", { name = "A & B", tags = { "x", "y" } }))
      assert.same({ "x", "y" }, xml.xpath(out, "/r/tags"))
      assert.equal("A & B", xml.xpath(out, "string(/r/name)"))
    end)

    it("refuses names that are not XML names", function()
      assert.equal('E_INVALID: "1bad" is not a valid XML name', select(2, xml.encode("1bad", {})))
      assert.equal('E_INVALID: "has space" is not a valid XML name',
        select(2, xml.encode("r", { ["has space"] = 1 })))
    end)

    it("refuses cycles and text XML cannot carry", function()
      local t = {}
      t.t = t
      assert.matches("^E_INVALID: cycle", select(2, xml.encode("r", t)))
      assert.matches("^E_INVALID: ", select(2, xml.encode("r", { a = "\1" })))
    end)
  end)
end)

describe("re", function()
  it("returns the whole match, groups and named groups", function()
    local m = re.match("on 2024-01-15.", "(\\d+)-(\\d+)-(?<day>\\d+)")
    assert.equal("2024-01-15", m[0])
    assert.equal("2024", m[1])
    assert.equal("01", m[2])
    assert.equal("15", m[3])
    assert.equal("15", m.day)
  end)

  it("marks unmatched groups false", function()
    local m = re.match("ab", "a(x)?(?<y>y)?b")
    assert.equal("ab", m[0])
    assert.is_false(m[1])
    assert.is_false(m.y)
  end)

  it("returns nil when nothing matches", function()
    assert.is_nil(re.match("abc", "x"))
    assert.is_false(re.test("abc", "x"))
    assert.is_true(re.test("abc", "b"))
  end)

  it("applies flags", function()
    assert.is_false(re.test("HELLO", "hello"))
    assert.is_true(re.test("HELLO", "hello", "i"))
    assert.is_true(re.test("a\nb", "^b$", "m"))
    assert.is_true(re.test("a\nb", "a.b", "s"))
    assert.is_true(re.test("ab", "a b # comment", "x"))
  end)

  it("raises for unknown flags and wrong types", function()
    assert.has_error(function() re.test("a", "a", "q") end)
    assert.has_error(function() re.test(nil, "a") end)
    assert.has_error(function() re.test("a", {}) end)
  end)

  it("reports a bad pattern with its offset", function()
    local m, err = re.match("x", "a(b")
    assert.is_nil(m)
    assert.matches("^E_REGEX: at offset 3: ", err)
    assert.matches("^E_REGEX: ", select(2, re.test("x", "[z-a]")))
  end)

  it("stops catastrophic backtracking with a clear error", function()
    local secs, ok, err = helper.timed(function()
      return re.test(string.rep("a", 40) .. "!", "^(a+)+$")
    end)
    assert.is_nil(ok)
    assert.matches("^E_REGEX: pattern backtracks too much", err)
    assert.is_true(secs < 2)
  end)

  it("caps the pattern size", function()
    assert.matches("^E_REGEX: pattern is over", select(2, re.test("a", string.rep("a", 70000))))
  end)

  it("matches by character in UTF-8", function()
    assert.equal("h\195\169llo", re.match("h\195\169llo", "^h.llo$")[0])
  end)

  it("matches subjects that are not valid UTF-8", function()
    assert.is_true(re.test("caf\255", "caf"))
    assert.equal("abc", re.match("\255abc", "abc")[0])
  end)

  it("refuses patterns that are not valid UTF-8", function()
    assert.matches("^E_REGEX: ", select(2, re.test("x", "\255")))
  end)

  it("finds all matches", function()
    local all = re.find_all("a1b22c333", "\\d+")
    assert.equal(3, #all)
    assert.equal("22", all[2][0])
    assert.equal(json.array_mt, getmetatable(all))
    assert.same({}, re.find_all("abc", "\\d"))
  end)

  it("advances past empty matches by whole characters", function()
    assert.equal(4, #re.find_all("abc", "x*"))
    assert.equal(6, #re.find_all("h\195\169llo", ""))
    local texts = {}
    for i, m in ipairs(re.find_all("a,,b", "[^,]*")) do texts[i] = m[0] end
    assert.same({ "a", "", "", "b", "" }, texts)
  end)

  it("substitutes globally with extended replacements", function()
    local out, n = re.gsub("a-b-c", "-", "+")
    assert.equal("a+b+c", out)
    assert.equal(2, n)
    assert.equal("Hello World", re.gsub("hello world", "(\\w+)", "\\u$1"))
    assert.equal("2024/01", re.gsub("01-2024", "(?<m>\\d+)-(?<y>\\d+)", "${y}/${m}"))
    assert.equal("x", re.gsub("x", "(y)?x", "$1x"))
    assert.equal("abc", re.gsub("abc", "z", "y"))
  end)

  it("grows the output for long replacements", function()
    local out = re.gsub(string.rep("a", 1000), "a", "bbbbbbbbbb")
    assert.equal(10000, #out)
  end)

  it("reports a bad replacement", function()
    local out, err = re.gsub("abc", "b", "$9")
    assert.is_nil(out)
    assert.matches("^E_REGEX: ", err)
  end)

  it("keeps working past the compiled-pattern cache bound", function()
    for i = 1, 600 do
      assert.is_true(re.test("k" .. i, "^k" .. i .. "$"))
    end
  end)
end)

describe("codec", function()
  local vectors = {
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
  }

  it("encodes and decodes the RFC 4648 base64 vectors", function()
    for _, v in ipairs(vectors) do
      assert.equal(v[2], codec.base64_encode(v[1]))
      assert.equal(v[1], codec.base64_decode(v[2]))
    end
  end)

  it("decodes base64 without padding", function()
    assert.equal("f", codec.base64_decode("Zg"))
    assert.equal("fo", codec.base64_decode("Zm8"))
  end)

  it("rejects bad base64", function()
    assert.equal("E_INVALID: invalid base64 character at offset 4", select(2, codec.base64_decode("Zm9v!")))
    assert.matches("^E_INVALID: ", select(2, codec.base64_decode("Z")))
    assert.matches("^E_INVALID: ", select(2, codec.base64_decode("Zg=")))
    assert.matches("^E_INVALID: ", select(2, codec.base64_decode("Z=g=")))
    assert.matches("^E_INVALID: ", select(2, codec.base64_decode("-_8")))
  end)

  it("uses the URL-safe alphabet without padding for base64url", function()
    assert.equal("+/8=", codec.base64_encode("\251\255"))
    assert.equal("-_8", codec.base64url_encode("\251\255"))
    assert.equal("\251\255", codec.base64url_decode("-_8"))
    assert.equal("\251\255", codec.base64url_decode("-_8="))
    assert.matches("^E_INVALID: ", select(2, codec.base64url_decode("+/8=")))
  end)

  it("round-trips every byte value", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local all = table.concat(bytes)
    assert.equal(all, codec.base64_decode(codec.base64_encode(all)))
    assert.equal(all, codec.base64url_decode(codec.base64url_encode(all)))
    assert.equal(all, codec.url_decode(codec.url_encode(all)))
    assert.equal(all, codec.hex_decode(codec.hex_encode(all)))
  end)

  it("percent-encodes all but RFC 3986 unreserved characters", function()
    assert.equal("a%20b%26c%2F%C3%A9-._~", codec.url_encode("a b&c/\195\169-._~"))
    assert.equal("a b+c", codec.url_decode("a%20b+c"))
    assert.equal("\195\169", codec.url_decode("%c3%A9"))
  end)

  it("rejects bad percent escapes", function()
    assert.equal("E_INVALID: bad percent escape at offset 1", select(2, codec.url_decode("a%zz")))
    assert.matches("^E_INVALID: ", select(2, codec.url_decode("%4")))
  end)

  it("hex-encodes in lower case", function()
    assert.equal("00ff10", codec.hex_encode("\0\255\16"))
    assert.equal("\0\255", codec.hex_decode("00FF"))
    assert.matches("^E_INVALID: ", select(2, codec.hex_decode("abc")))
    assert.matches("^E_INVALID: ", select(2, codec.hex_decode("zz")))
  end)

  it("computes SHA-256", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", codec.sha256_hex(""))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", codec.sha256_hex("abc"))
    assert.equal(32, #codec.sha256("abc"))
  end)

  it("computes HMAC-SHA-256 (RFC 4231 case 2)", function()
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      codec.hmac_sha256_hex("Jefe", "what do ya want for nothing?"))
    assert.equal(codec.hmac_sha256_hex("k", "m"), codec.hex_encode(codec.hmac_sha256("k", "m")))
  end)

  it("raises for wrong argument types", function()
    assert.has_error(function() codec.sha256_hex({}) end)
    assert.has_error(function() codec.hmac_sha256_hex("k") end)
    assert.has_error(function() codec.base64_encode() end)
  end)
end)
