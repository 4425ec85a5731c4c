// Test support, not part of the CardBridge package: the `cardbridge emulator` binary in a child
// process, driven through its control API (JSON over loopback HTTP under /__cardbridge/).
// Compiled with the tests and the examples (bindings/csharp/tests/run.sh), never into CardBridge.dll.
using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Text;

namespace CardBridge.Testing
{
    /// <summary>How <see cref="Emulator.Request"/> spoils a platform → merchant request.</summary>
    public enum Tamper
    {
        /// <summary>Correctly signed.</summary>
        None,
        /// <summary>One letter or digit of the body changed after signing.</summary>
        BodyByte,
        /// <summary>Signed with a freshly generated key.</summary>
        WrongKey,
        /// <summary>No <c>Signature</c> header.</summary>
        Unsigned,
        /// <summary>A <c>Signature</c> header without its <c>signature=</c> key.</summary>
        MalformedHeader,
        /// <summary>Signed for, and carrying, another <c>Client-Id</c>.</summary>
        WrongClientId,
    }

    /// <summary>How <see cref="Emulator.Callback"/> spoils a WeChat Pay card-event callback.</summary>
    public enum CallbackTamper
    {
        /// <summary>Correctly signed.</summary>
        None,
        /// <summary>A <c>WECHATPAY/SIGNTEST/</c> signature probe.</summary>
        SigntestProbe,
        /// <summary>Correctly signed ten minutes before the given time.</summary>
        StaleTimestamp,
        /// <summary>The resource's AEAD tag is broken (the signature verifies).</summary>
        BadTag,
        /// <summary><c>Wechatpay-Serial</c> names a key the merchant does not have.</summary>
        WrongSerial,
        /// <summary>One letter or digit of the body changed after signing.</summary>
        BodyByte,
        /// <summary>No <c>Wechatpay-Signature</c> header.</summary>
        MissingHeader,
    }

    /// <summary>The control API refused a request (or the emulator did not start).</summary>
    public sealed class EmulatorException : Exception
    {
        public EmulatorException(int status, string error, string message, string field) : base(message)
        {
            Status = status;
            Error = error;
            Field = field;
        }

        /// <summary>The HTTP status of the refusal (0: the emulator did not start).</summary>
        public int Status { get; private set; }

        /// <summary>The error kind's name, e.g. <c>INVALID_PARAMETER</c>.</summary>
        public string Error { get; private set; }

        /// <summary>The member at fault, if any.</summary>
        public string Field { get; private set; }
    }

    /// <summary>A platform → merchant request minted by the emulator: method, request-target, headers
    /// in order and the exact body. Feed it to <c>AlipayPlus.Begin</c> / <c>WechatPay.CallbackBegin</c>
    /// (see <see cref="Requests"/>) as if your HTTP server had received it.</summary>
    public sealed class HttpRequest
    {
        internal HttpRequest(object doc)
        {
            Method = MiniJson.Str(doc, "method");
            Target = MiniJson.Str(doc, "target");
            Headers = new ReadOnlyCollection<KeyValuePair<string, string>>(MiniJson.Arr(doc, "headers")
                .Select(h => (List<object>)h)
                .Select(h => new KeyValuePair<string, string>((string)h[0], (string)h[1]))
                .ToList());
            BodyText = MiniJson.Str(doc, "body");
        }

        public string Method { get; private set; }
        public string Target { get; private set; }
        public IList<KeyValuePair<string, string>> Headers { get; private set; }
        public string BodyText { get; private set; }
        public byte[] Body { get { return Encoding.UTF8.GetBytes(BodyText); } }

        /// <summary>The first header named <paramref name="name"/> (any case), or null.</summary>
        public string Header(string name)
        {
            return Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase))
                .Select(h => h.Value).FirstOrDefault();
        }
    }

    /// <summary>Feeds a minted <see cref="HttpRequest"/> to an integration.</summary>
    public static class Requests
    {
        public static InboundResult Begin(this AlipayPlus alipay, HttpRequest request, long? nowUnixMs = null)
        {
            return alipay.Begin(request.Method, request.Target, request.Headers, request.Body, nowUnixMs);
        }

        public static CallbackResult CallbackBegin(this WechatPay wechat, HttpRequest request,
            long? nowUnixMs = null)
        {
            return wechat.CallbackBegin(request.Method, request.Target, request.Headers, request.Body, nowUnixMs);
        }
    }

    /// <summary>
    /// <c>cardbridge --json emulator --port 0 [--config FILE]</c> in a child process: both platforms on
    /// one loopback port (the Alipay+ <c>issueCard</c> endpoint and the WeChat Pay card-member APIs), and
    /// the platform's signed calls to the merchant, minted on request. The binary is
    /// <c>$CARDBRIDGE_BIN</c>, else <c>cardbridge</c> next to this assembly, else on <c>PATH</c>.
    /// Dispose stops it.
    /// </summary>
    public sealed class Emulator : IDisposable
    {
        private readonly Process process;
        private readonly string configFile;
        private readonly StringBuilder errors = new StringBuilder();

        private Emulator(string configJson)
        {
            var args = "--json emulator --port 0";
            if (configJson != null)
            {
                configFile = Path.GetTempFileName();
                File.WriteAllText(configFile, configJson);
                args += " --config \"" + configFile + "\"";
            }
            var info = new ProcessStartInfo(FindBinary(), args)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                StandardOutputEncoding = Encoding.UTF8,
            };
            info.EnvironmentVariables.Remove("CARDBRIDGE_PLATFORM_CONFIG");
            info.EnvironmentVariables.Remove("CARDBRIDGE_KEYS");
            process = Process.Start(info);
            process.ErrorDataReceived += (sender, e) =>
            {
                lock (errors)
                {
                    errors.AppendLine(e.Data);
                }
            };
            process.BeginErrorReadLine();
            var line = process.StandardOutput.ReadLine();
            var doc = line == null ? null : MiniJson.Parse(line);
            if (doc == null || MiniJson.Get(doc, "url") == null)
            {
                process.WaitForExit();
                DeleteConfig();
                string message;
                lock (errors)
                {
                    message = doc == null ? "cardbridge emulator did not start: " + errors : MiniJson.Str(doc, "message");
                }
                throw new EmulatorException(0, doc == null ? "START_FAILED" : MiniJson.Str(doc, "error"), message,
                    doc == null ? null : MiniJson.Str(doc, "field"));
            }
            BaseUrl = MiniJson.Str(doc, "url");
        }

        /// <summary>Starts an emulator; <paramref name="configJson"/> members (e.g. <c>client_id</c>,
        /// <c>platform_private_key</c>, <c>merchant_public_key</c>, <c>wechatpay_private_key</c>,
        /// <c>public_key_id</c>, <c>api_v3_key</c>, <c>platform_certificate</c>) override the test keys and IDs.</summary>
        public static Emulator Start(string configJson = null)
        {
            return new Emulator(configJson);
        }

        /// <summary>Starts an emulator playing Alipay+ for <paramref name="clientId"/>.</summary>
        public static Emulator Start(string platformPrivateKeyPem, string merchantPublicKeyPem, string clientId)
        {
            return Start("{\"platform_private_key\":" + MiniJson.Quote(platformPrivateKeyPem) +
                ",\"merchant_public_key\":" + MiniJson.Quote(merchantPublicKeyPem) +
                ",\"client_id\":" + MiniJson.Quote(clientId) + "}");
        }

        /// <summary><c>http://127.0.0.1:PORT</c>: the <c>base_url</c> of both integrations.</summary>
        public string BaseUrl { get; private set; }

        /// <summary>The binary this class starts.</summary>
        public static string FindBinary()
        {
            var name = Path.DirectorySeparatorChar == '\\' ? "cardbridge.exe" : "cardbridge";
            var candidates = new List<string>();
            var explicitPath = Environment.GetEnvironmentVariable("CARDBRIDGE_BIN");
            if (!string.IsNullOrEmpty(explicitPath))
            {
                candidates.Add(explicitPath);
            }
            else
            {
                candidates.Add(Path.Combine(AppDomain.CurrentDomain.BaseDirectory, name));
                var path = Environment.GetEnvironmentVariable("PATH") ?? "";
                candidates.AddRange(path.Split(Path.PathSeparator).Where(d => d.Length > 0)
                    .Select(d => Path.Combine(d, name)));
            }
            var found = candidates.FirstOrDefault(File.Exists);
            if (found == null)
            {
                throw new EmulatorException(0, "NOT_FOUND", "no cardbridge binary (looked at " +
                    string.Join(", ", candidates.Take(3)) + "...); build it (cargo build --bin cardbridge) " +
                    "and put it next to the test assembly, on PATH, or in CARDBRIDGE_BIN", null);
            }
            return found;
        }

        /// <summary>One control API call, e.g. <c>Control("GET", "/counters", null)</c>: the answer's JSON
        /// (parsed by <see cref="MiniJson"/>), or an <see cref="EmulatorException"/>.</summary>
        public object Control(string method, string path, string bodyJson)
        {
            var request = (HttpWebRequest)WebRequest.Create(BaseUrl + "/__cardbridge" + path);
            request.Method = method;
            request.Proxy = null;
            request.Timeout = 120000;
            request.ReadWriteTimeout = 120000;
            if (bodyJson != null)
            {
                var data = Encoding.UTF8.GetBytes(bodyJson);
                request.ContentType = "application/json";
                request.ContentLength = data.Length;
                using (var s = request.GetRequestStream())
                {
                    s.Write(data, 0, data.Length);
                }
            }
            try
            {
                using (var response = (HttpWebResponse)request.GetResponse())
                {
                    return MiniJson.Parse(Read(response));
                }
            }
            catch (WebException e)
            {
                var response = e.Response as HttpWebResponse;
                if (response == null)
                {
                    throw;
                }
                using (response)
                {
                    var doc = MiniJson.Parse(Read(response));
                    throw new EmulatorException((int)response.StatusCode, MiniJson.Str(doc, "error"),
                        MiniJson.Str(doc, "message"), MiniJson.Str(doc, "field"));
                }
            }
        }

        private static string Read(WebResponse response)
        {
            using (var reader = new StreamReader(response.GetResponseStream(), Encoding.UTF8))
            {
                return reader.ReadToEnd();
            }
        }

        private object Counters(string platform)
        {
            return MiniJson.Get(Control("GET", "/counters", null), platform);
        }

        private static long Count(object map, string key)
        {
            var value = MiniJson.Get(map, key);
            return value == null ? 0 : (long)value;
        }

        // ---- Alipay+ ----

        /// <summary>Queues a fault for a later <c>issueCard</c> (first in, first out), e.g.
        /// <c>{"fault":"unknown"}</c>, <c>{"fault":"http_status","status":503}</c>.</summary>
        public void PushFault(string faultJson)
        {
            Control("POST", "/alipayplus/faults", faultJson);
        }

        /// <summary>How many <c>issueCard</c> requests carried <paramref name="requestId"/>.</summary>
        public long Hits(string requestId)
        {
            return Count(MiniJson.Get(Counters("alipayplus"), "hits"), requestId);
        }

        /// <summary>Every <c>issueCard</c> request received, refused and faulted ones included.</summary>
        public long IssueCardHits { get { return Count(Counters("alipayplus"), "issue_card_hits"); } }

        /// <summary>Distinct requestIds that got a card.</summary>
        public long CardsIssued { get { return Count(Counters("alipayplus"), "cards_issued"); } }

        private static readonly string[] TamperNames =
            { "none", "bad-signature", "wrong-key", "probe", "malformed-header", "wrong-client-id" };

        /// <summary>A platform → merchant <c>POST</c> to <paramref name="target"/> carrying
        /// <paramref name="body"/>, signed as the platform signs (<c>Request-Time</c>
        /// <paramref name="requestTime"/>, null: now) and spoiled as <paramref name="tamper"/> says.</summary>
        public HttpRequest Request(string target, string body, string requestTime = null, Tamper tamper = Tamper.None)
        {
            var doc = Control("POST", "/alipayplus/mint", "{\"target\":" + MiniJson.Quote(target) +
                ",\"body\":" + MiniJson.Quote(body) +
                (requestTime == null ? "" : ",\"request_time\":" + MiniJson.Quote(requestTime)) +
                ",\"tamper\":\"" + TamperNames[(int)tamper] + "\"}");
            return new HttpRequest(MiniJson.Get(doc, "request"));
        }

        /// <summary>Whether <paramref name="answer"/> is the merchant's answer to <paramref name="request"/>,
        /// signed with the merchant key the emulator knows (Signature, Response-Time, Client-Id, exact body).</summary>
        public bool VerifyResponse(HttpRequest request, HttpResponse answer)
        {
            var headers = string.Join(",", answer.Headers.Select(h =>
                "[" + MiniJson.Quote(h.Key) + "," + MiniJson.Quote(h.Value) + "]"));
            var doc = Control("POST", "/alipayplus/verify", "{\"target\":" + MiniJson.Quote(request.Target) +
                ",\"headers\":[" + headers + "],\"body\":" + MiniJson.Quote(answer.BodyText) + "}");
            return (bool)MiniJson.Get(doc, "valid");
        }

        /// <summary>A valid <c>notifyCardRegistration</c> body for <paramref name="requestId"/> (test data).</summary>
        public static string SampleRegistration(string requestId)
        {
            return "{\"appId\":\"2102010113769000\",\"customerBelongsTo\":\"TNG\",\"customerId\":\"1236450862137570000\"," +
                "\"requestId\":" + MiniJson.Quote(requestId) + ",\"registrationFields\":[" +
                "{\"fieldCode\":\"USER_NAME\",\"fieldValue\":\"John Doe\"},{\"fieldCode\":\"GENDER\",\"fieldValue\":\"M\"}," +
                "{\"fieldCode\":\"BIRTH_DATE\",\"fieldValue\":\"2002-07-25\"}," +
                "{\"fieldCode\":\"MOBILE_PHONE\",\"fieldValue\":\"+6588120000\"}," +
                "{\"fieldCode\":\"EMAIL\",\"fieldValue\":\"email@example.com\"}]}";
        }

        // ---- WeChat Pay ----

        /// <summary>Queues a fault for a later WeChat Pay request, e.g.
        /// <c>{"fault":"status","status":429}</c>, <c>{"fault":"drop"}</c>.</summary>
        public void PushWechatFault(string faultJson)
        {
            Control("POST", "/wechatpay/faults", faultJson);
        }

        /// <summary>Seeds a user card as WeChat holds it after the user opened it (<c>UNACTIVATED</c>).</summary>
        public void AddUserCard(string userCardCode, string cardId, string openid, string brandId)
        {
            Control("POST", "/wechatpay/cards", "{\"user_card_code\":" + MiniJson.Quote(userCardCode) +
                ",\"card_id\":" + MiniJson.Quote(cardId) + ",\"openid\":" + MiniJson.Quote(openid) +
                ",\"brand_id\":" + MiniJson.Quote(brandId) + "}");
        }

        /// <summary><c>confirm</c> requests received for <paramref name="userCardCode"/>.</summary>
        public long ConfirmHits(string userCardCode)
        {
            return Count(MiniJson.Get(Counters("wechatpay"), "confirm_hits"), userCardCode);
        }

        /// <summary>Distinct user cards a <c>confirm</c> was applied to.</summary>
        public long ConfirmsApplied { get { return Count(Counters("wechatpay"), "cards_confirmed"); } }

        /// <summary>WeChat Pay requests whose path starts with <paramref name="pathPrefix"/>.</summary>
        public long WechatHits(string pathPrefix)
        {
            var byPath = (Dictionary<string, object>)MiniJson.Get(Counters("wechatpay"), "hits_by_path");
            return byPath.Where(p => p.Key.StartsWith(pathPrefix, StringComparison.Ordinal)).Sum(p => (long)p.Value);
        }

        /// <summary>The emulator's view of a user card, parsed by <see cref="MiniJson"/> (sensitive fields
        /// in cleartext); <see cref="EmulatorException"/> (status 404) when it has none.</summary>
        public object UserCard(string userCardCode)
        {
            var doc = Control("GET", "/wechatpay/cards/" + Uri.EscapeDataString(userCardCode), null);
            return MiniJson.Get(doc, "card");
        }

        private static readonly string[] CallbackTamperNames =
            { "none", "probe", "stale", "bad-tag", "wrong-serial", "bad-signature", "missing-header" };

        /// <summary>A card-event callback as WeChat Pay sends it: <paramref name="plaintextJson"/> (the
        /// resource in cleartext) encrypted and sealed, signed at <paramref name="nowUnixSeconds"/> (null:
        /// now), spoiled as <paramref name="tamper"/> says. Seeds no card.</summary>
        public HttpRequest Callback(string eventType, string originalType, string plaintextJson,
            long? nowUnixSeconds = null, CallbackTamper tamper = CallbackTamper.None)
        {
            var doc = Control("POST", "/wechatpay/mint", "{\"event_type\":" + MiniJson.Quote(eventType) +
                ",\"original_type\":" + MiniJson.Quote(originalType ?? "") +
                ",\"resource\":" + plaintextJson +
                (nowUnixSeconds == null ? "" : ",\"now_unix\":" + nowUnixSeconds.Value.ToString(CultureInfo.InvariantCulture)) +
                ",\"tamper\":\"" + CallbackTamperNames[(int)tamper] + "\",\"seed\":false}");
            return new HttpRequest(MiniJson.Get(doc, "request"));
        }

        /// <summary>A <c>USER_CARD.CREATE</c> resource in cleartext for <see cref="Callback"/> (brand
        /// <c>1004</c>, phone <c>13800000000</c>); a null or empty code leaves it out.</summary>
        public static string SampleUserCardCreate(string userCardCode, string cardId, string openid)
        {
            return "{" + (string.IsNullOrEmpty(userCardCode) ? "" : "\"user_card_code\":" + MiniJson.Quote(userCardCode) + ",") +
                "\"card_id\":" + MiniJson.Quote(cardId) + ",\"openid\":" + MiniJson.Quote(openid) +
                ",\"card_color\":\"#63B359\",\"card_picture_url\":\"https://wxpaylogo.qpic.cn/wxpaylogo/xxxxx/0\"," +
                "\"brand_id\":\"1004\",\"card_type\":\"NORMAL\",\"phone_number\":\"13800000000\",\"level\":\"普通会员\"," +
                "\"valid_date_information\":{\"type\":\"PERMANENT\"},\"pickup_time\":\"2021-06-24T16:37:26+08:00\"," +
                "\"user_information\":{\"common_field_list\":[{\"name\":\"USER_FORM_FLAG_NAME\",\"value\":\"张三\"}," +
                "{\"name\":\"USER_FORM_FLAG_SEX\",\"value\":\"男\"}],\"custom_field_list\":[{\"name\":\"喜欢的运动\"," +
                "\"user_chosen_values\":[\"跑步\",\"游泳\"]}]},\"user_card_state\":\"NOT_EFFECTIVE\"," +
                "\"create_time\":\"2021-06-24T16:37:26+08:00\",\"modify_time\":\"2021-06-24T16:37:26+08:00\"}";
        }

        /// <summary>Stops the emulator (<c>POST /__cardbridge/shutdown</c>) and waits for it.</summary>
        public void Dispose()
        {
            if (!process.HasExited)
            {
                try
                {
                    Control("POST", "/shutdown", null);
                }
                catch (WebException)
                {
                    // Already going away; the wait below decides.
                }
                if (!process.WaitForExit(30000))
                {
                    process.Kill();
                    process.WaitForExit();
                }
            }
            process.Dispose();
            DeleteConfig();
        }

        private void DeleteConfig()
        {
            if (configFile != null && File.Exists(configFile))
            {
                File.Delete(configFile);
            }
        }
    }
}
