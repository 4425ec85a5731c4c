// Bring your own transport: issueCard and confirm prepared by the library, sent by the test's own
// HTTP/1.1 client (a raw loopback socket, not the library), completed by the library.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Text;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class TransportTests
    {
        private static string Request(string requestId)
        {
            return "{\"appId\":\"2102010113769000\",\"customerBelongsTo\":\"TNG\",\"requestId\":\"" + requestId +
                "\",\"customerId\":\"210911290000\",\"externalCustomerId\":\"M-000123\"," +
                "\"registerDate\":\"2019-11-27T19:07:41+08:00\"," +
                "\"cardFields\":[{\"fieldCode\":\"POINT\",\"fieldValue\":\"123\"}]}";
        }

        /// <summary>The host's own transport: the prepared request exactly as given, Connection: close.</summary>
        public static TransportAnswer MyHttp(PreparedRequest p)
        {
            var uri = new Uri(p.Url);
            TcpClient client;
            try
            {
                client = new TcpClient(uri.Host, uri.Port);
            }
            catch (SocketException)
            {
                return TransportAnswer.Failed(TransportReply.NotSent);
            }
            using (client)
            using (var stream = client.GetStream())
            {
                var body = p.Body;
                var head = new StringBuilder();
                head.Append(p.Method).Append(' ').Append(uri.PathAndQuery).Append(" HTTP/1.1\r\n");
                head.Append("Host: ").Append(uri.Authority).Append("\r\nConnection: close\r\n");
                foreach (var h in p.Headers)
                {
                    head.Append(h.Key).Append(": ").Append(h.Value).Append("\r\n");
                }
                head.Append("Content-Length: ").Append(body.Length).Append("\r\n\r\n");
                var bytes = Encoding.UTF8.GetBytes(head.ToString());
                stream.Write(bytes, 0, bytes.Length);
                stream.Write(body, 0, body.Length);
                var all = new MemoryStream();
                stream.CopyTo(all);
                var raw = all.ToArray();
                var text = Encoding.UTF8.GetString(raw);
                var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (end < 0)
                {
                    return TransportAnswer.Failed(TransportReply.NoAnswer);
                }
                var lines = text.Substring(0, end).Split(new[] { "\r\n" }, StringSplitOptions.None);
                var status = int.Parse(lines[0].Split(' ')[1]);
                var headers = new List<KeyValuePair<string, string>>();
                for (var i = 1; i < lines.Length; i++)
                {
                    var colon = lines[i].IndexOf(':');
                    headers.Add(new KeyValuePair<string, string>(lines[i].Substring(0, colon), lines[i].Substring(colon + 1).Trim()));
                }
                var headBytes = Encoding.UTF8.GetByteCount(text.Substring(0, end + 4));
                var answer = new byte[raw.Length - headBytes];
                Array.Copy(raw, headBytes, answer, 0, answer.Length);
                return new TransportAnswer(status, headers, answer);
            }
        }

        [Test]
        public void IssueCardOverMyTransportRetriesA500AndReplaysTheDuplicate()
        {
            using (var fx = new Fixture())
            {
                fx.Emulator.PushFault("{\"fault\":\"http_status\",\"status\":500}");
                var step = fx.AlipayPlus.PrepareIssueCard(Request("CS-BYO-1"));
                Assert.True(!step.Done && step.Answer == null, "a new request is to be sent");
                var p = step.Next;
                Assert.Equal(PreparedPurpose.Send, p.Purpose, "purpose");
                Assert.Equal(0L, p.WaitMs, "no wait before the first send");
                Assert.Equal("POST", p.Method, "method");
                Assert.Contains("/v2/pds/memberships/issueCard", p.Url, "url");
                Assert.True(p.OutboxId.EndsWith("/CS-BYO-1", StringComparison.Ordinal), "outbox id");
                Assert.Equal(0L, fx.Emulator.Hits("CS-BYO-1"), "prepare sends nothing");

                var retry = fx.AlipayPlus.CompleteIssueCard(p, MyHttp(p));
                Assert.True(!retry.Done && retry.Next.WaitMs > 0, "the 500 gives a retry request after a wait");
                Assert.Throws<AlreadyUsedException>(() => fx.AlipayPlus.CompleteIssueCard(p,
                    TransportAnswer.Failed(TransportReply.NotSent)), "a completed request cannot be completed again");
                var done = fx.AlipayPlus.CompleteIssueCard(retry.Next, MyHttp(retry.Next));
                Assert.True(done.Done, "S is final");
                Assert.Contains("\"cardNo\"", done.Answer, "answer");
                Assert.Equal(2L, fx.Emulator.Hits("CS-BYO-1"), "two sends");

                var again = fx.AlipayPlus.PrepareIssueCard(Request("CS-BYO-1"));
                Assert.True(again.Done, "the duplicate is answered from the outbox");
                Assert.Equal(done.Answer, again.Answer, "the same answer");
                Assert.Equal(done.Answer, fx.AlipayPlus.IssueCard(Request("CS-BYO-1")), "the same as IssueCard");
                Assert.Equal(done.Answer, fx.AlipayPlus.IssueCardOver(Request("CS-BYO-1"), MyHttp), "the same over");
                Assert.Equal(2L, fx.Emulator.Hits("CS-BYO-1"), "no second send");
            }
        }

        [Test]
        public void TransportFailuresAndASpentBudget()
        {
            using (var fx = new Fixture())
            {
                var n = 0;
                var answer = fx.AlipayPlus.IssueCardOver(Request("CS-BYO-2"), p =>
                    ++n == 1 ? TransportAnswer.Failed(TransportReply.NotSent) : MyHttp(p));
                Assert.Contains("\"cardNo\"", answer, "issued after a failed connect");
                Assert.Equal(1L, fx.Emulator.Hits("CS-BYO-2"), "one real send");
                var e = Assert.Throws<RemoteUnknownException>(() => fx.AlipayPlus.IssueCardOver(Request("CS-BYO-3"),
                    p => TransportAnswer.Failed(TransportReply.TimedOut)), "budget spent");
                Assert.Equal("CS-BYO-3", e.RequestId, "the error names the requestId");
                // A prepared request disposed uncompleted releases its lease: the next call proceeds at once.
                var step = fx.AlipayPlus.PrepareIssueCard(Request("CS-BYO-4"));
                step.Next.Dispose();
                Assert.Contains("\"cardNo\"", fx.AlipayPlus.IssueCardOver(Request("CS-BYO-4"), MyHttp), "finished");
            }
        }

        [Test]
        public void ConfirmOverMyTransportReadsTheCardBackAfterATamperedAnswer()
        {
            using (var fx = new WechatFixture())
            {
                fx.Emulator.AddUserCard("CSBYO1", WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
                var input = "{\"user_card_code\":\"CSBYO1\",\"card_id\":\"" + WechatFixture.CardId +
                    "\",\"brand_id\":\"1004\",\"openid\":\"" + WechatFixture.Openid +
                    "\",\"user_card_confirm_state\":\"CREATE_CARD_SUCCESS\"}";
                var seen = new List<PreparedPurpose>();
                var answer = fx.WechatPay.ConfirmOver(input, p =>
                {
                    seen.Add(p.Purpose);
                    var got = MyHttp(p);
                    if (seen.Count == 1)
                    {
                        var body = got.Body;
                        var at = Array.IndexOf(body, (byte)'E');
                        body[at] = (byte)'F'; // spoiled in transit: the signature no longer verifies
                        return new TransportAnswer(got.Status, got.Headers, body);
                    }
                    return got;
                });
                Assert.Equal(2, seen.Count, "two requests");
                Assert.Equal(PreparedPurpose.ReadBack, seen[1], "then a read-back, never a blind re-send");
                Assert.Contains("\"user_card_state\":\"EFFECTIVE\"", answer, "the card is EFFECTIVE");
                Assert.Equal(1L, fx.Emulator.ConfirmHits("CSBYO1"), "one confirm sent");
                Assert.True(fx.WechatPay.PrepareConfirm(input).Done, "the replay needs no request");
            }
        }
    }
}
