// The verification matrix and field limits (tests/fixtures/matrix, made by generate.py with Python's
// cryptography, never by cardbridge), with the comparisons of the Rust runner tests/matrix.rs for the
// Alipay+ inbound calls, the WeChat Pay callbacks and the Alipay+ model limits. Each test goes through
// every case and reports all mismatches at once.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class MatrixTests
    {
        private static List<object> Cases(string file)
        {
            var text = File.ReadAllText(Path.Combine(Runner.Root, "tests", "fixtures", "matrix", file), Encoding.UTF8);
            return MiniJson.Arr(MiniJson.Parse(text), "cases");
        }

        private static string Fixture(string relative)
        {
            return File.ReadAllText(Path.Combine(Runner.Root, "tests", "fixtures", relative), Encoding.UTF8);
        }

        private static List<KeyValuePair<string, string>> Pairs(List<object> list)
        {
            return list.Cast<List<object>>()
                .Select(h => new KeyValuePair<string, string>((string)h[0], (string)h[1])).ToList();
        }

        private static void Check(List<string> failures, bool ok, string name, string what)
        {
            if (!ok)
            {
                failures.Add(name + ": " + what);
            }
        }

        private static void Done(List<string> failures, int count, int minimum, string suite)
        {
            Assert.True(count >= minimum, suite + ": at least " + minimum + " cases");
            Assert.True(failures.Count == 0, suite + ": " + failures.Count + " mismatch(es):\n" + string.Join("\n", failures));
        }

        private static string AlipayConfig(object cfg)
        {
            var versions = (Dictionary<string, object>)MiniJson.Get(cfg, "platform_public_key_files_by_version");
            var byVersion = string.Join(",", versions.Select(v => Json.Quote(v.Key) + ":" + Json.Quote(Keys.Read((string)v.Value))));
            return "{\"client_id\":" + Json.Quote(MiniJson.Str(cfg, "client_id")) +
                ",\"merchant_private_key\":" + Json.Quote(Keys.Read(MiniJson.Str(cfg, "merchant_private_key_file"))) +
                ",\"platform_public_key\":" + Json.Quote(Keys.Read(MiniJson.Str(cfg, "platform_public_key_file"))) +
                ",\"platform_public_keys_by_version\":{" + byVersion + "}" +
                ",\"time_offset_minutes\":" + (long)MiniJson.Get(cfg, "time_offset_minutes") +
                ",\"max_clock_skew_ms\":" + (long)MiniJson.Get(cfg, "max_clock_skew_ms") + "}";
        }

        [Test]
        public void AlipayPlusInboundMatrix()
        {
            var cases = Cases("alipayplus_inbound.json");
            var failures = new List<string>();
            foreach (var c in cases)
            {
                var name = MiniJson.Str(c, "name");
                var r = MiniJson.Get(c, "request");
                var now = (long)MiniJson.Get(c, "now_ms");
                var decision = MiniJson.Str(c, "decision");
                var e = MiniJson.Get(c, "expect");
                using (var store = Store.InMemory())
                using (var ap = new AlipayPlus(AlipayConfig(MiniJson.Get(c, "config")), store))
                using (var began = ap.Begin(MiniJson.Str(r, "method"), MiniJson.Str(r, "target"), Pairs(MiniJson.Arr(r, "headers")),
                    Encoding.UTF8.GetBytes(MiniJson.Str(r, "body")), now))
                {
                    Check(failures, began.NeedsDecision == (bool)MiniJson.Get(e, "host_called"), name, "host called");
                    if (began.NeedsDecision && decision == null)
                    {
                        continue;
                    }
                    using (var response = began.NeedsDecision ? ap.Finish(began.Call, decision, now) : began.Response)
                    {
                        Check(failures, (long)MiniJson.Get(e, "status") == response.Status, name, "status " + response.Status);
                        var expected = string.Join("\n", Pairs(MiniJson.Arr(e, "headers")).Select(h => h.Key + ": " + h.Value));
                        var actual = string.Join("\n", response.Headers.Select(h => h.Key + ": " + h.Value));
                        Check(failures, expected == actual, name, "headers:\n" + actual);
                        Check(failures, MiniJson.Str(e, "body") == response.BodyText, name, "body " + response.BodyText);
                    }
                }
            }
            Done(failures, cases.Count, 15, "Alipay+ inbound matrix");
        }

        private static string WechatConfig(object cfg)
        {
            var certs = MiniJson.Arr(cfg, "platform_certificate_files").Select(f => Json.Quote(Fixture((string)f)));
            return "{\"mchid\":" + Json.Quote(MiniJson.Str(cfg, "mchid")) +
                ",\"merchant_serial_no\":" + Json.Quote(MiniJson.Str(cfg, "merchant_serial_no")) +
                ",\"merchant_private_key\":" + Json.Quote(Fixture(MiniJson.Str(cfg, "merchant_private_key_file"))) +
                ",\"api_v3_key\":" + Json.Quote(MiniJson.Str(cfg, "api_v3_key")) +
                ",\"wechatpay_public_key_id\":" + Json.Quote(MiniJson.Str(cfg, "wechatpay_public_key_id")) +
                ",\"wechatpay_public_key\":" + Json.Quote(Fixture(MiniJson.Str(cfg, "wechatpay_public_key_file"))) +
                ",\"platform_certificates\":[" + string.Join(",", certs) + "]}";
        }

        [Test]
        public void WechatPayCallbackMatrix()
        {
            var cases = Cases("wechatpay_callbacks.json");
            var failures = new List<string>();
            foreach (var c in cases)
            {
                var name = MiniJson.Str(c, "name");
                var r = MiniJson.Get(c, "request");
                var now = (long)MiniJson.Get(c, "now");
                var e = MiniJson.Get(c, "expect");
                using (var store = Store.InMemory())
                using (var wx = new WechatPay(WechatConfig(MiniJson.Get(c, "config")), store))
                using (var began = wx.CallbackBegin(MiniJson.Str(r, "method"), MiniJson.Str(r, "target"),
                    Pairs(MiniJson.Arr(r, "headers")), Encoding.UTF8.GetBytes(MiniJson.Str(r, "body")), now * 1000))
                {
                    Check(failures, began.NeedsHandling == (bool)MiniJson.Get(e, "host_called"), name, "host called");
                    var want = MiniJson.Get(e, "event");
                    if (began.NeedsHandling && want != null)
                    {
                        var seen = MiniJson.Parse(began.Event.Json);
                        Check(failures, began.Event.Kind == MiniJson.Str(want, "kind"), name, "kind " + began.Event.Kind);
                        var phone = MiniJson.Str(want, "phone_number");
                        if (phone != null)
                        {
                            Check(failures, MiniJson.Str(MiniJson.Get(seen, "resource"), "phone_number") == phone, name,
                                "decrypted phone_number");
                        }
                        var undecryptable = string.Join(",", MiniJson.Arr(seen, "undecryptable").Cast<string>());
                        Check(failures, undecryptable == string.Join(",", MiniJson.Arr(want, "undecryptable").Cast<string>()),
                            name, "undecryptable " + undecryptable);
                    }
                    var response = began.NeedsHandling
                        ? wx.CallbackFinish(began.Event, (bool)MiniJson.Get(c, "accept"), "", now * 1000)
                        : began.Response;
                    using (response)
                    {
                        Check(failures, (long)MiniJson.Get(e, "status") == response.Status, name, "status " + response.Status);
                        Check(failures, MiniJson.Str(e, "body") == response.BodyText, name, "body " + response.BodyText);
                    }
                }
            }
            Done(failures, cases.Count, 15, "WeChat Pay callback matrix");
        }

        [Test]
        public void AlipayPlusFieldLimits()
        {
            var cases = Cases("limits_alipayplus.json");
            var failures = new List<string>();
            foreach (var c in cases)
            {
                var name = MiniJson.Str(c, "name");
                var expect = MiniJson.Get(c, "expect");
                var direction = MiniJson.Str(c, "direction") == "inbound" ? Direction.Inbound : Direction.Outbound;
                CardbridgeException error = null;
                try
                {
                    AlipayPlus.Validate(MiniJson.Str(c, "message"), MiniJson.Str(c, "input"), direction);
                }
                catch (CardbridgeException x)
                {
                    error = x;
                }
                var ok = (bool)MiniJson.Get(expect, "ok");
                if (error == null)
                {
                    Check(failures, ok, name, "accepted, expected a refusal");
                    continue;
                }
                Check(failures, !ok, name, "refused, expected success: " + error.ResultName + " " + error.Field);
                if (ok)
                {
                    continue;
                }
                Check(failures, error.ResultName == MiniJson.Str(expect, "result"), name, "result " + error.ResultName);
                Check(failures, error.Field == MiniJson.Str(expect, "field"), name, "field " + error.Field);
                if (MiniJson.Get(expect, "limit") != null)
                {
                    Check(failures, error.Limit == MiniJson.Str(expect, "limit"), name, "limit " + error.Limit);
                }
            }
            Done(failures, cases.Count, 100, "Alipay+ field limits");
        }
    }
}
