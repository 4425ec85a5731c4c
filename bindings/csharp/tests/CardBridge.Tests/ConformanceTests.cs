// The cross-language conformance suite (tests/fixtures/conformance/*.json), with exactly the
// comparisons of the Rust runner tests/conformance.rs: status, headers in order and body byte
// for byte; result name, field, limit and message of every refusal.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class ConformanceTests
    {
        private static object Load(string file)
        {
            return MiniJson.Parse(File.ReadAllText(Path.Combine(Runner.Root, "tests", "fixtures", "conformance", file),
                Encoding.UTF8));
        }

        [Test]
        public void AlipayPlusValidateCases()
        {
            var cases = (List<object>)Load("alipayplus_validate.json");
            Assert.True(cases.Count >= 15, "at least 15 cases");
            foreach (var c in cases)
            {
                var name = MiniJson.Str(c, "name");
                var direction = MiniJson.Str(c, "direction") == "inbound" ? Direction.Inbound : Direction.Outbound;
                var expect = MiniJson.Get(c, "expect");
                string output = null;
                CardbridgeException error = null;
                try
                {
                    output = AlipayPlus.Validate(MiniJson.Str(c, "message"), MiniJson.Str(c, "input"), direction);
                }
                catch (CardbridgeException e)
                {
                    error = e;
                }
                if (error == null)
                {
                    Assert.Equal(true, MiniJson.Get(expect, "ok"), name + ": expected an error, got success");
                    Assert.Equal(MiniJson.Str(expect, "output"), output, name);
                }
                else
                {
                    Assert.Equal(false, MiniJson.Get(expect, "ok"), name + ": unexpected error " + error.Message);
                    Assert.Equal(MiniJson.Str(expect, "result"), error.ResultName, name + ": result");
                    // The C ABI gives "" for "no field"/"no limit"; the binding maps it to null, like the fixtures.
                    Assert.Equal(MiniJson.Str(expect, "field"), error.Field, name + ": field");
                    Assert.Equal(MiniJson.Str(expect, "limit"), error.Limit, name + ": limit");
                    Assert.Equal(MiniJson.Str(expect, "message"), error.Message, name + ": message");
                }
            }
        }

        /// <summary>A flat options object (strings and booleans) back to JSON.</summary>
        private static string OptionsJson(object options)
        {
            if (options == null)
            {
                return null;
            }
            var parts = new List<string>();
            foreach (var kv in (Dictionary<string, object>)options)
            {
                var value = kv.Value is bool b ? (b ? "true" : "false") : Json.Quote((string)kv.Value);
                parts.Add(Json.Quote(kv.Key) + ":" + value);
            }
            return "{" + string.Join(",", parts) + "}";
        }

        [Test]
        public void WechatPayValidateCases()
        {
            var cases = (List<object>)Load("wechatpay_validate.json");
            Assert.True(cases.Count >= 90, "at least 90 cases");
            foreach (var c in cases)
            {
                var name = MiniJson.Str(c, "name");
                var expect = MiniJson.Get(c, "expect");
                string output = null;
                CardbridgeException error = null;
                try
                {
                    output = WechatPay.Validate(MiniJson.Str(c, "operation"), MiniJson.Str(c, "input"),
                        OptionsJson(MiniJson.Get(c, "options")));
                }
                catch (CardbridgeException e)
                {
                    error = e;
                }
                if (error == null)
                {
                    Assert.Equal(true, MiniJson.Get(expect, "ok"), name + ": expected an error, got success");
                    Assert.Equal(MiniJson.Str(expect, "output"), output, name);
                }
                else
                {
                    Assert.Equal(false, MiniJson.Get(expect, "ok"), name + ": unexpected error " + error.Message);
                    Assert.Equal(MiniJson.Str(expect, "result"), error.ResultName, name + ": result");
                    Assert.Equal(MiniJson.Str(expect, "field"), error.Field, name + ": field");
                    Assert.Equal(MiniJson.Str(expect, "limit"), error.Limit, name + ": limit");
                    Assert.Equal(MiniJson.Str(expect, "message"), error.Message, name + ": message");
                }
            }
        }

        [Test]
        public void AlipayPlusInboundCases()
        {
            var cases = MiniJson.Arr(Load("alipayplus_inbound.json"), "cases");
            Assert.True(cases.Count >= 3, "cases found");
            foreach (var c in cases)
            {
                var name = MiniJson.Str(c, "name");
                var cfg = MiniJson.Get(c, "config");
                var offset = MiniJson.Get(cfg, "time_offset_minutes");
                var config = "{\"client_id\":" + Json.Quote(MiniJson.Str(cfg, "client_id")) +
                    ",\"merchant_private_key\":" + Json.Quote(Keys.Read(MiniJson.Str(cfg, "merchant_private_key_file"))) +
                    ",\"platform_public_key\":" + Json.Quote(Keys.Read(MiniJson.Str(cfg, "platform_public_key_file"))) +
                    ",\"time_offset_minutes\":" + (offset == null ? 0L : (long)offset) + "}";
                var r = MiniJson.Get(c, "request");
                var headers = MiniJson.Arr(r, "headers").Cast<List<object>>()
                    .Select(h => new KeyValuePair<string, string>((string)h[0], (string)h[1])).ToList();
                var now = (long)MiniJson.Get(c, "now_ms");
                var decision = MiniJson.Str(c, "decision");
                using (var store = Store.InMemory())
                using (var ap = new AlipayPlus(config, store))
                using (var began = ap.Begin(MiniJson.Str(r, "method"), MiniJson.Str(r, "target"), headers,
                    Encoding.UTF8.GetBytes(MiniJson.Str(r, "body")), now))
                {
                    HttpResponse response;
                    if (!began.NeedsDecision)
                    {
                        Assert.True(decision == null, name + ": the host should have been asked");
                        response = began.Response;
                    }
                    else
                    {
                        Assert.True(decision != null, name + ": host asked unexpectedly");
                        response = ap.Finish(began.Call, decision, now);
                    }
                    using (response)
                    {
                        var e = MiniJson.Get(c, "expect");
                        Assert.Equal((long)MiniJson.Get(e, "status"), (long)response.Status, name + ": status");
                        var expectedHeaders = MiniJson.Arr(e, "headers").Cast<List<object>>()
                            .Select(h => (string)h[0] + ": " + (string)h[1]);
                        var actualHeaders = response.Headers.Select(h => h.Key + ": " + h.Value);
                        Assert.Equal(string.Join("\n", expectedHeaders), string.Join("\n", actualHeaders), name + ": headers");
                        Assert.BytesEqual(Encoding.UTF8.GetBytes(MiniJson.Str(e, "body")), response.Body, name + ": body");
                    }
                }
            }
        }
    }
}
