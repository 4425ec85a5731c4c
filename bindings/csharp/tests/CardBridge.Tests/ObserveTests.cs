// Issue 10.1 / 10.2 from C#: native log events through CardbridgeLog, their fields, no personal data or
// key material in them, a throwing handler that breaks nothing, and the counters moving as a flow runs.
using System;
using CardBridge.Testing;
using System.Collections.Generic;
using System.Linq;

namespace CardBridge.Tests
{
    public class ObserveTests : IDisposable
    {
        private readonly Fixture fx = new Fixture();

        public void Dispose()
        {
            CardbridgeLog.SetHandler(CardbridgeLogLevel.Error, null);
            fx.Dispose();
        }

        [Test]
        public void FlowEventsCarryFieldsButNoPersonalDataAndCountersMove()
        {
            var events = new List<LogEvent>();
            CardbridgeLog.SetHandler(CardbridgeLogLevel.Information, e => { lock (events) events.Add(e); });

            string issueRequest;
            string signature;
            var request = fx.Registration("CS-OBS-1");
            using (var began = fx.AlipayPlus.Begin(request))
            {
                signature = request.Header("Signature");
                issueRequest = AlipayPlus.BuildIssueCard(began.Call.RequestJson, "M-000123", Fixture.RegisterDate, Fixture.CardFields);
                using (fx.AlipayPlus.Finish(began.Call, "{}"))
                {
                }
            }
            fx.Emulator.PushFault("{\"fault\":\"unknown\"}");
            fx.AlipayPlus.IssueCard(issueRequest);

            var answer = events.Single(e => e.Message == "inbound answer");
            Assert.Equal(CardbridgeLogLevel.Information, answer.Level, "answer level");
            Assert.Equal("cardbridge::inbound", answer.Target, "answer target");
            Assert.Equal("CS-OBS-1", answer.Fields["request_id"], "requestId field");
            Assert.Equal("S", answer.Fields["result"], "result field");
            var retry = events.Single(e => e.Message == "retry scheduled");
            Assert.Equal(CardbridgeLogLevel.Warning, retry.Level, "retry level");
            Assert.Contains("\"attempt\":1", retry.FieldsJson, "typed JSON fields");
            var done = events.Single(e => e.Message == "outbound attempt" && e.Fields["outcome"] == "succeeded");
            Assert.Equal("200", done.Fields["http_status"], "status field");
            Assert.Contains("outbound attempt kind=alipayplus.issueCard out_id=", done.ToString(), "ToString");

            var text = string.Join("\n", events.Select(e => e.Target + " " + e + " " + e.FieldsJson));
            var never = new List<string> { "John Doe", "+6588120000", "email@example.com", "2002-07-25",
                "1236450862137570000", "PRIVATE KEY", signature.Substring(signature.Length - 40) };
            foreach (var line in Keys.MerchantPrivate.Split('\n').Where(l => !l.StartsWith("-----") && l.Length >= 24))
            {
                never.Add(line.Substring(0, 24));
            }
            foreach (var secret in never)
            {
                Assert.True(text.IndexOf(secret, StringComparison.Ordinal) < 0, "an event contains " + secret);
            }

            var metrics = fx.AlipayPlus.Metrics();
            Assert.Contains("\"notifyCardRegistration\":{\"S\":1}", metrics, "inbound counted");
            Assert.Contains("\"alipayplus.issueCard\":{\"ambiguous\":1,\"succeeded\":1}", metrics, "attempts counted");
            Assert.Contains("\"retries\":1,", metrics, "retry counted");
            Assert.Contains("\"pending_entries\":0}", metrics, "nothing pending");

            // Removed: nothing more arrives.
            CardbridgeLog.SetHandler(CardbridgeLogLevel.Trace, null);
            var seen = events.Count;
            var request2 = fx.Registration("CS-OBS-2");
            using (var began = fx.AlipayPlus.Begin(request2))
            using (fx.AlipayPlus.Finish(began.Call, "{}"))
            {
            }
            Assert.Equal(seen, events.Count, "no event after removal");
            Assert.Contains("\"notifyCardRegistration\":{\"S\":2}", fx.AlipayPlus.Metrics(), "counters keep counting");
        }

        [Test]
        public void WechatCallbackAndConfirmEventsCarryNoPersonalDataOrKeys()
        {
            var events = new List<LogEvent>();
            CardbridgeLog.SetHandler(CardbridgeLogLevel.Trace, e => { lock (events) events.Add(e); });
            string signature;
            using (var wx = new WechatFixture())
            {
                var request = wx.CardCreated("478515832690");
                signature = request.Header("wechatpay-signature");
                using (var began = wx.WechatPay.CallbackBegin(request))
                {
                    Assert.True(began.NeedsHandling, "the callback reaches the host");
                    using (wx.WechatPay.CallbackFinish(began.Event, true))
                    {
                    }
                }
                wx.Emulator.AddUserCard("478515832690", WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
                wx.WechatPay.Confirm(WechatFixture.ConfirmInput("478515832690"));
                var metrics = wx.WechatPay.Metrics();
                Assert.Contains("\"callback\":{\"accepted\":1}", metrics, "callback counted");
                Assert.Contains("\"wechatpay.confirm\":{\"succeeded\":1}", metrics, "confirm counted");
            }
            Assert.True(events.Any(e => e.Target == "cardbridge::callback" && e.Message == "callback answer"),
                "the callback answer was logged");
            Assert.True(events.Any(e => e.Message == "outbound attempt" && e.Fields["kind"] == "wechatpay.confirm"),
                "the confirm attempt was logged");

            var text = string.Join("\n", events.Select(e => e.Target + " " + e + " " + e.FieldsJson));
            var never = new List<string> { WechatFixture.Phone, "张三", "Li Lei", WechatFixture.ApiV3Key, "PRIVATE KEY",
                signature.Substring(signature.Length - 40) };
            foreach (var pem in new[] { Keys.MerchantPrivate, Keys.PlatformPrivate })
            {
                foreach (var line in pem.Split('\n').Where(l => !l.StartsWith("-----") && l.Length >= 24))
                {
                    never.Add(line.Substring(0, 24));
                }
            }
            foreach (var secret in never)
            {
                Assert.True(text.IndexOf(secret, StringComparison.Ordinal) < 0, "an event contains " + secret);
            }
        }

        [Test]
        public void AThrowingHandlerBreaksNothing()
        {
            var calls = 0;
            CardbridgeLog.SetHandler(CardbridgeLogLevel.Trace, e => { calls++; throw new InvalidOperationException("handler bug"); });
            var request = fx.Registration("CS-OBS-3");
            using (var began = fx.AlipayPlus.Begin(request))
            using (var answer = fx.AlipayPlus.Finish(began.Call, "{}"))
            {
                Assert.Equal(200, answer.Status, "the call completed");
            }
            Assert.True(calls >= 1, "the handler was called");
        }
    }
}
