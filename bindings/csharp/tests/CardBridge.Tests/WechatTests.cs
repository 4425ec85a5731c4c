// The WeChat Pay card-member flows through the public API, against the loopback WeChat emulator:
// card-event callbacks (begin -> event -> finish, duplicates, refusals, redelivery), confirm through
// the outbox (faults, final failures, validation detail, resume after a restart), the rest of the
// user-card lifecycle, certificate mode and configuration errors.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    /// <summary>A WeChat emulator and an integration pointed at it; disposed after each test.</summary>
    public sealed class WechatFixture : IDisposable
    {
        public const string PubKeyId = "PUB_KEY_ID_0114232134912410000000000000";
        public const string Mchid = "1900000001";
        public const string MerchantSerial = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
        public const string ApiV3Key = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
        public const string CardId = "pbLatjvWOibDc5-TBnbUk1pD12o0";
        public const string Openid = "obLatjnx9gnqzS4myYGmLZ7LgLBA";
        public const string BrandId = "1004";
        public const string EventType = "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE";
        public const string Phone = "13800000000";

        public readonly Emulator Emulator;
        public readonly WechatPay WechatPay;
        private readonly List<string> files = new List<string>();

        /// <param name="sqlite">Use an SQLite store in a temporary file instead of memory.</param>
        /// <param name="maxAttempts">The integration's retry budget.</param>
        public WechatFixture(bool sqlite = false, int maxAttempts = 3)
        {
            Emulator = Emulator.Start(EmulatorConfig());
            using (var store = sqlite ? Store.OpenSqlite(TempFile()) : Store.InMemory())
            {
                // The integration keeps its own reference: the store is disposed right away on purpose.
                WechatPay = new WechatPay(Config(Emulator.BaseUrl, maxAttempts), store);
            }
        }

        /// <summary>The emulator's configuration; the test platform pair plays WeChat Pay's key pair.</summary>
        public static string EmulatorConfig(string apiV3Key = ApiV3Key, string extra = "")
        {
            return "{\"wechatpay_private_key\":" + Json.Quote(Keys.PlatformPrivate) +
                ",\"public_key_id\":" + Json.Quote(PubKeyId) +
                ",\"merchant_public_key\":" + Json.Quote(Keys.MerchantPublic) +
                ",\"mchid\":" + Json.Quote(Mchid) +
                ",\"merchant_serial_no\":" + Json.Quote(MerchantSerial) +
                ",\"api_v3_key\":" + Json.Quote(apiV3Key) + extra + "}";
        }

        /// <summary>The integration's configuration in public-key mode, fast retries, generous timeouts.</summary>
        public static string Config(string baseUrl, int maxAttempts = 3, string apiV3Key = ApiV3Key,
            bool certificateMode = false)
        {
            return "{\"mchid\":" + Json.Quote(Mchid) +
                ",\"merchant_serial_no\":" + Json.Quote(MerchantSerial) +
                ",\"merchant_private_key\":" + Json.Quote(Keys.MerchantPrivate) +
                ",\"api_v3_key\":" + Json.Quote(apiV3Key) +
                (certificateMode
                    ? ",\"certificate_mode\":true"
                    : ",\"wechatpay_public_key_id\":" + Json.Quote(PubKeyId) +
                      ",\"wechatpay_public_key\":" + Json.Quote(Keys.PlatformPublic)) +
                ",\"base_url\":" + Json.Quote(baseUrl) +
                ",\"connect_timeout_ms\":10000,\"read_timeout_ms\":30000" +
                ",\"retry\":{\"max_attempts\":" + maxAttempts +
                ",\"base_delay_ms\":5,\"max_delay_ms\":20,\"deadline_ms\":60000}}";
        }

        /// <summary>A signed (or spoiled) USER_CARD.CREATE callback for <paramref name="code"/>.</summary>
        public HttpRequest CardCreated(string code, CallbackTamper tamper = CallbackTamper.None)
        {
            return Emulator.Callback(EventType, "user_card", Emulator.SampleUserCardCreate(code, CardId, Openid),
                null, tamper);
        }

        /// <summary>The confirm a CRM sends once it opened the member account; sensitive fields in cleartext.</summary>
        public static string ConfirmInput(string code, string extra = "")
        {
            return "{\"user_card_code\":" + Json.Quote(code) + ",\"card_id\":" + Json.Quote(CardId) +
                ",\"brand_id\":" + Json.Quote(BrandId) + ",\"openid\":" + Json.Quote(Openid) +
                ",\"phone_number\":" + Json.Quote(Phone) +
                ",\"user_information\":{\"common_field_list\":[{\"name\":\"USER_FORM_FLAG_NAME\",\"value\":\"Li Lei\"}]}" +
                ",\"user_card_confirm_state\":\"CREATE_CARD_SUCCESS\"" + extra + "}";
        }

        /// <summary>A confirm answer without its <c>request_id</c>: a repeat answered from the outbox has the
        /// stored status and body but no HTTP answer of its own, so no Request-ID.</summary>
        public static string WithoutRequestId(string answer)
        {
            return Regex.Replace(answer, "\"request_id\":(null|\"[^\"]*\")", "\"request_id\":_");
        }

        /// <summary>The <c>code</c> member of a callback answer body.</summary>
        public static string CodeOf(HttpResponse response)
        {
            return MiniJson.Str(MiniJson.Parse(response.BodyText), "code");
        }

        /// <summary>A path for a temporary SQLite file, removed (with its WAL files) on dispose.</summary>
        public string TempFile()
        {
            var path = Path.Combine(Path.GetTempPath(), "cardbridge-cs-wx-" + Guid.NewGuid().ToString("N") + ".db");
            files.Add(path);
            return path;
        }

        public void Dispose()
        {
            WechatPay.Dispose();
            Emulator.Dispose();
            foreach (var f in files)
            {
                foreach (var suffix in new[] { "", "-wal", "-shm" })
                {
                    File.Delete(f + suffix);
                }
            }
        }
    }

    public class WechatFlowTests : IDisposable
    {
        private readonly WechatFixture fx = new WechatFixture();

        public void Dispose()
        {
            fx.Dispose();
        }

        [Test]
        public void CardCreatedCallbackBecomesAnEventWithTheCleartextPhoneAndIsAccepted()
        {
            {
                var request = fx.CardCreated("478515832665");
                Assert.Equal("POST", request.Method, "callback method");
                Assert.True(request.BodyText.IndexOf(WechatFixture.Phone, StringComparison.Ordinal) < 0,
                    "the phone is sealed on the wire");
                Assert.True(request.Header("wechatpay-signature") != null, "the callback is signed");
                using (var began = fx.WechatPay.CallbackBegin(request))
                {
                    Assert.True(began.NeedsHandling && began.Response == null, "a signed callback reaches the host");
                    var ev = began.Event;
                    Assert.Equal("USER_CARD.CREATE", ev.Kind, "Kind");
                    Assert.Equal(WechatFixture.EventType, ev.EventType, "EventType");
                    Assert.True(!string.IsNullOrEmpty(ev.Id), "Id is set");
                    var json = MiniJson.Parse(ev.Json);
                    Assert.Equal(ev.Id, MiniJson.Str(json, "id"), "Id is the JSON's id");
                    var resource = MiniJson.Get(json, "resource");
                    Assert.Equal(WechatFixture.Phone, MiniJson.Str(resource, "phone_number"), "phone decrypted for the host");
                    Assert.Equal("478515832665", MiniJson.Str(resource, "user_card_code"), "user_card_code");
                    var fields = MiniJson.Arr(MiniJson.Get(resource, "user_information"), "common_field_list");
                    Assert.Equal("张三", MiniJson.Str(fields[0], "value"), "a decrypted non-ASCII user field");
                    Assert.Equal(0, MiniJson.Arr(json, "undecryptable").Count, "every sensitive field decrypted");

                    using (var answer = fx.WechatPay.CallbackFinish(ev, true))
                    {
                        Assert.Equal(200, answer.Status, "accepted: status");
                        Assert.Equal("SUCCESS", WechatFixture.CodeOf(answer), "accepted: code");
                    }
                }
            }
        }

        [Test]
        public void DuplicateIsAcknowledgedWithoutAnEvent()
        {
            {
                var request = fx.CardCreated("1001");
                using (var began = fx.WechatPay.CallbackBegin(request))
                using (fx.WechatPay.CallbackFinish(began.Event, true))
                {
                }
                for (var redelivery = 0; redelivery < 2; redelivery++)
                {
                    using (var dup = fx.WechatPay.CallbackBegin(request))
                    {
                        Assert.True(!dup.NeedsHandling && dup.Event == null, "redelivery " + redelivery + ": no event");
                        Assert.Equal(200, dup.Response.Status, "redelivery " + redelivery + ": status");
                        Assert.Equal("SUCCESS", WechatFixture.CodeOf(dup.Response), "redelivery " + redelivery + ": code");
                    }
                }
            }
            // Another notification for the same card is a new event.
            {
                var other = fx.CardCreated("1001");
                using (var began = fx.WechatPay.CallbackBegin(other))
                {
                    Assert.True(began.NeedsHandling, "a new notification id reaches the host");
                }
            }
        }

        [Test]
        public void ProbeStaleAndForgedCallbacksAreRefusedWithoutAnEvent()
        {
            var cases = new[]
            {
                new KeyValuePair<CallbackTamper, int>(CallbackTamper.SigntestProbe, 401),
                new KeyValuePair<CallbackTamper, int>(CallbackTamper.StaleTimestamp, 401),
                new KeyValuePair<CallbackTamper, int>(CallbackTamper.WrongSerial, 401),
                new KeyValuePair<CallbackTamper, int>(CallbackTamper.BodyByte, 401),
                new KeyValuePair<CallbackTamper, int>(CallbackTamper.BadTag, 400),
                new KeyValuePair<CallbackTamper, int>(CallbackTamper.MissingHeader, 400),
            };
            var plain = Emulator.SampleUserCardCreate("2002", WechatFixture.CardId, WechatFixture.Openid);
            foreach (var c in cases)
            {
                {
                    var request = fx.Emulator.Callback(WechatFixture.EventType, "user_card", plain, null, c.Key);
                    using (var began = fx.WechatPay.CallbackBegin(request))
                    {
                        Assert.True(!began.NeedsHandling, c.Key + ": answered without the host");
                        Assert.Equal(c.Value, began.Response.Status, c.Key + ": status");
                        Assert.Equal("FAIL", WechatFixture.CodeOf(began.Response), c.Key + ": code");
                    }
                }
            }
            // A genuine callback signed ten minutes ago is stale for the integration's clock too.
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            {
                var old = fx.Emulator.Callback(WechatFixture.EventType, "user_card", plain, now - 600);
                using (var began = fx.WechatPay.CallbackBegin(old, now * 1000))
                {
                    Assert.Equal(401, began.Response.Status, "signed 600 s before now");
                    // The refusal carries its diagnosis: the clock, with the measured offset.
                    Assert.Contains("\"check\":\"clock_skew\"", began.Response.Diagnosis, "diagnosis");
                    Assert.Contains("\"offset_ms\":-600000", began.Response.Diagnosis, "measured offset");
                }
            }
            {
                var old = fx.Emulator.Callback(WechatFixture.EventType, "user_card", plain, now - 600);
                using (var began = fx.WechatPay.CallbackBegin(old, (now - 600) * 1000))
                {
                    Assert.True(began.NeedsHandling, "the same age is fine when the host's clock agrees");
                }
            }
            // Refusals claimed nothing: the untampered callback still reaches the host.
            {
                var request = fx.Emulator.Callback(WechatFixture.EventType, "user_card", plain);
                using (var began = fx.WechatPay.CallbackBegin(request))
                {
                    Assert.True(began.NeedsHandling, "genuine callback after refused ones");
                }
            }
        }

        [Test]
        public void CallbackBeginTakesRawPartsAsAnHttpServerReceivesThem()
        {
            {
                var request = fx.CardCreated("2004");
                var headers = request.Headers
                    .Select(h => new KeyValuePair<string, string>(h.Key.ToLowerInvariant(), h.Value)).ToList();
                using (var began = fx.WechatPay.CallbackBegin("POST", "/wechat/notify?x=1", headers, request.Body))
                {
                    Assert.True(began.NeedsHandling, "lower-case header names and another target are accepted");
                    Assert.Equal("USER_CARD.CREATE", began.Event.Kind, "Kind");
                }
                using (var began = fx.WechatPay.CallbackBegin("POST", "/", null, null))
                {
                    Assert.True(!began.NeedsHandling, "no headers and no body: answered, not thrown");
                    Assert.Equal(400, began.Response.Status, "refused");
                    Assert.Equal("FAIL", WechatFixture.CodeOf(began.Response), "code");
                }
            }
        }

        [Test]
        public void EventsHeldOrRefusedAreRedelivered()
        {
            {
                var request = fx.CardCreated("1002");
                using (var held = fx.WechatPay.CallbackBegin(request))
                {
                    Assert.True(held.NeedsHandling, "first delivery");
                    // While the host holds it, a redelivery is told to come back later.
                    using (var busy = fx.WechatPay.CallbackBegin(request))
                    {
                        Assert.Equal(500, busy.Response.Status, "busy: status");
                        Assert.Equal("FAIL", WechatFixture.CodeOf(busy.Response), "busy: code");
                    }
                }
                // Disposed unfinished: the claim is released.
                using (var began = fx.WechatPay.CallbackBegin(request))
                {
                    Assert.True(began.NeedsHandling, "redelivery after Dispose reaches the host");
                    using (var answer = fx.WechatPay.CallbackFinish(began.Event, false, "CRM busy"))
                    {
                        Assert.Equal(500, answer.Status, "refused: status");
                        var body = MiniJson.Parse(answer.BodyText);
                        Assert.Equal("FAIL", MiniJson.Str(body, "code"), "refused: code");
                        Assert.Equal("CRM busy", MiniJson.Str(body, "message"), "refused: the reason is the message");
                    }
                }
                using (var began = fx.WechatPay.CallbackBegin(request))
                {
                    Assert.True(began.NeedsHandling, "redelivery after a refusal reaches the host");
                    using (var answer = fx.WechatPay.CallbackFinish(began.Event, true, null))
                    {
                        Assert.Equal(200, answer.Status, "accepted at last");
                    }
                }
                using (var dup = fx.WechatPay.CallbackBegin(request))
                {
                    Assert.Equal(200, dup.Response.Status, "then acknowledged by the library");
                }
            }
        }

        [Test]
        public void TypedInputsRoundTripAndAreSentLikeTheirJson()
        {
            const string code = "478515832667";
            // FromJson/ToJson: named members typed, unknown members and values kept, order of the wire form.
            var json = WechatFixture.ConfirmInput(code, ",\"card_color\":\"#FFD700\",\"future\":{\"a\":[1,2]}");
            var typed = global::CardBridge.ConfirmInput.FromJson(json);
            Assert.Equal(code, typed.UserCardCode, "UserCardCode");
            Assert.Equal(ConfirmStates.CreateCardSuccess, typed.UserCardConfirmState, "state");
            Assert.Equal(WechatFixture.Phone, typed.PhoneNumber, "PhoneNumber");
            Assert.Equal(2, typed.Extra.Count, "two members kept in Extra");
            Assert.Equal("{\"a\":[1,2]}", typed.Extra[1].Value, "raw JSON kept");
            var back = MiniJson.Parse(typed.ToJson());
            var original = MiniJson.Parse(json);
            foreach (var name in new[] { "user_card_code", "card_id", "phone_number", "card_color", "user_card_confirm_state" })
            {
                Assert.Equal(MiniJson.Str(original, name), MiniJson.Str(back, name), name + " round-trips");
            }
            Assert.Equal("Li Lei", MiniJson.Str(MiniJson.Arr(MiniJson.Get(back, "user_information"), "common_field_list")[0],
                "value"), "user_information round-trips");
            Assert.True(!typed.ToString().Contains(WechatFixture.Phone), "ToString leaves the phone out");
            var unknown = global::CardBridge.ConfirmInput.FromJson(WechatFixture.ConfirmInput(code).Replace(
                "CREATE_CARD_SUCCESS", "CREATE_CARD_LATER"));
            Assert.Equal("CREATE_CARD_LATER", unknown.UserCardConfirmState, "an unknown state is kept");
            Assert.Throws<FormatException>(() => global::CardBridge.ConfirmInput.FromJson("{\"openid\":5}"), "wrong type");

            // Sent: the same validation and outbox key as the JSON form.
            fx.Emulator.AddUserCard(code, WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
            typed.Extra.Clear();
            var card = UserCard.FromAnswer(fx.WechatPay.Confirm(typed));
            Assert.Equal(UserCardStates.Effective, card.UserCardState, "card EFFECTIVE");
            Assert.Equal(WechatFixture.Phone, card.PhoneNumber, "decrypted phone");
            fx.WechatPay.Confirm(typed.ToJson());
            Assert.Equal(1L, fx.Emulator.ConfirmHits(code), "the JSON form of the same confirm came from the outbox");
            var e = Assert.Throws<ValidationException>(() => fx.WechatPay.Confirm(unknown), "unknown state refused");
            Assert.Equal("confirm.user_card_confirm_state", e.Field, "Field");
            var tooLong = global::CardBridge.ConfirmInput.FromJson(WechatFixture.ConfirmInput("3005"));
            tooLong.CardId = new string('c', 33);
            e = Assert.Throws<ValidationException>(() => fx.WechatPay.Confirm(tooLong), "33-character card_id");
            Assert.Equal("confirm.card_id", e.Field, "Field");
            Assert.Equal("32", e.Limit, "Limit");

            var points = new PointsSyncInput
            {
                OutRequestNo = "CS-TYPED-PTS", BrandId = WechatFixture.BrandId, CardId = WechatFixture.CardId,
                Openid = WechatFixture.Openid, UserCardCode = code, PointBalance = 7,
            };
            Assert.Equal(204L, MiniJson.Get(MiniJson.Parse(fx.WechatPay.SyncUserPoints(points)), "status"), "points synced");
            var again = PointsSyncInput.FromJson(points.ToJson());
            Assert.Equal(points.ToJson(), again.ToJson(), "PointsSyncInput round-trips");
            Assert.Equal(7L, again.PointBalance, "PointBalance");

            var odd = UserCard.FromJson("{\"user_card_code\":\"1\",\"user_card_state\":\"FROZEN\",\"level\":\"GOLD\"}");
            Assert.Equal("FROZEN", odd.UserCardState, "unknown user card state kept");
            Assert.Equal("{\"user_card_code\":\"1\",\"user_card_state\":\"FROZEN\",\"level\":\"GOLD\"}", odd.ToJson(),
                "UserCard round-trips");
        }

        [Test]
        public void TheConfirmTimestampFollowsTheHandleClockAndARefusalCarriesTheOffset()
        {
            const string code = "478515832669";
            fx.Emulator.AddUserCard(code, WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
            // This handle's clock runs an hour ahead: the platform refuses the timestamp it signed.
            IntPtr error;
            var rc = NativeMethods.cardbridge_test_wechatpay_set_clock(fx.WechatPay.Handle, 2, 3600000, out error);
            CardbridgeException.Check(rc, error);
            try
            {
                var e = Assert.Throws<RemoteFailedException>(
                    () => fx.WechatPay.Confirm(WechatFixture.ConfirmInput(code)), "skewed timestamp");
                Assert.Equal("SIGN_ERROR", e.RemoteCode, "refused by the platform");
                Assert.Contains("\"platform_clock_offset_ms\":-3", e.RemoteDetail, "offset measured from Date");
                Assert.Contains("NTP", e.RemoteDetail, "the clock named as the cause");
                Assert.Equal(0L, fx.Emulator.ConfirmsApplied, "nothing applied");
            }
            finally
            {
                rc = NativeMethods.cardbridge_test_wechatpay_set_clock(fx.WechatPay.Handle, 0, 0, out error);
                CardbridgeException.Check(rc, error);
            }
        }

        [Test]
        public void ConfirmOpensTheCardOnce()
        {
            const string code = "478515832665";
            fx.Emulator.AddUserCard(code, WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
            Assert.Equal("UNACTIVATED", MiniJson.Str((fx.Emulator.UserCard(code)), "user_card_state"),
                "seeded card");
            var text = fx.WechatPay.Confirm(WechatFixture.ConfirmInput(code));
            var answer = MiniJson.Parse(text);
            Assert.Equal(200L, MiniJson.Get(answer, "status"), "status");
            var body = MiniJson.Get(answer, "body");
            Assert.Equal("EFFECTIVE", MiniJson.Str(body, "user_card_state"), "the card is EFFECTIVE");
            Assert.Equal(WechatFixture.Phone, MiniJson.Str(body, "phone_number"), "answer field decrypted");
            Assert.Equal(0, MiniJson.Arr(answer, "undecryptable").Count, "every answer field decrypted");
            Assert.True(MiniJson.Get(answer, "request_id") != null, "the answer names its request_id");
            Assert.Equal(1L, fx.Emulator.ConfirmHits(code), "one confirm sent");
            Assert.Equal(1L, fx.Emulator.ConfirmsApplied, "one confirm applied");
            var card = (fx.Emulator.UserCard(code));
            Assert.Equal(WechatFixture.Phone, MiniJson.Str(card, "phone_number"), "WeChat decrypted what the library encrypted");
            Assert.Equal("Li Lei", MiniJson.Str(MiniJson.Arr(MiniJson.Get(card, "user_information"), "common_field_list")[0], "value"),
                "user information reached WeChat");

            Assert.Equal(WechatFixture.WithoutRequestId(text),
                WechatFixture.WithoutRequestId(fx.WechatPay.Confirm(WechatFixture.ConfirmInput(code))),
                "the repeat returns the stored answer");
            Assert.Equal(1L, fx.Emulator.ConfirmHits(code), "the repeat was not sent");

            var conflict = Assert.Throws<IdempotencyConflictException>(
                () => fx.WechatPay.Confirm(WechatFixture.ConfirmInput(code, ",\"level\":\"gold\"")), "same card, other input");
            Assert.Equal(ResultCode.IdempotencyConflict, conflict.Code, "Code");
            Assert.Equal(1L, fx.Emulator.ConfirmHits(code), "the conflict was not sent");
        }

        [Test]
        public void InvalidConfirmThrowsValidationWithFieldAndLimitAndSendsNothing()
        {
            var e = Assert.Throws<ValidationException>(
                () => fx.WechatPay.Confirm(WechatFixture.ConfirmInput("3003", ",\"card_color\":\"yellow\"")), "card_color");
            Assert.Equal(ResultCode.Validation, e.Code, "Code");
            Assert.Equal("CARDBRIDGE_RESULT_VALIDATION", e.ResultName, "ResultName");
            Assert.Equal("confirm.card_color", e.Field, "Field");
            Assert.Contains("confirm.card_color", e.Message, "Message names the field");

            var longPhone = WechatFixture.ConfirmInput("3004").Replace(WechatFixture.Phone, new string('1', 215));
            e = Assert.Throws<ValidationException>(() => fx.WechatPay.Confirm(longPhone), "215-digit phone");
            Assert.Equal("confirm.phone_number", e.Field, "Field");
            Assert.Equal("214", e.Limit, "Limit");
            Assert.Equal(null, e.RemoteCode, "no RemoteCode");
            Assert.Equal(0, e.HttpStatus, "no HttpStatus");

            var json = Assert.Throws<InvalidJsonException>(() => fx.WechatPay.Confirm("{not json"), "not JSON");
            Assert.Equal(ResultCode.InvalidJson, json.Code, "Code");
            Assert.Equal(0L, fx.Emulator.WechatHits("/v3"), "nothing was sent");
        }

        [Test]
        public void FaultsAreRetriedAndAFinal400IsNot()
        {
            var faults = new[]
            {
                "{\"fault\":\"status\",\"status\":500,\"code\":\"SYSTEM_ERROR\",\"message\":\"系统错误\"}",
                "{\"fault\":\"accepted_202\"}",
                "{\"fault\":\"probe\"}",
                "{\"fault\":\"stale\"}",
                "{\"fault\":\"bad_signature\"}",
                "{\"fault\":\"unsigned\"}",
                "{\"fault\":\"drop\"}",
            };
            for (var i = 0; i < faults.Length; i++)
            {
                var code = (4000 + i).ToString();
                fx.Emulator.AddUserCard(code, WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
                fx.Emulator.PushWechatFault(faults[i]);
                var answer = MiniJson.Parse(fx.WechatPay.Confirm(WechatFixture.ConfirmInput(code)));
                Assert.Equal("EFFECTIVE", MiniJson.Str(MiniJson.Get(answer, "body"), "user_card_state"), faults[i]);
                // Faults that may hide an applied confirm are followed by a read-back (the card is
                // EFFECTIVE: no second confirm); 500 and 202 prove nothing was applied: one re-send.
                var resent = faults[i].Contains("\"status\"") || faults[i].Contains("accepted");
                Assert.Equal(resent ? 2L : 1L, fx.Emulator.ConfirmHits(code), faults[i] + ": confirms sent");
                Assert.Equal((long)(i + 1), fx.Emulator.ConfirmsApplied, faults[i] + ": applied once");
            }

            fx.Emulator.AddUserCard("4100", WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
            fx.Emulator.PushWechatFault("{\"fault\":\"status\",\"status\":400,\"code\":\"PARAM_ERROR\",\"message\":\"参数错误\"}");
            var e = Assert.Throws<RemoteFailedException>(() => fx.WechatPay.Confirm(WechatFixture.ConfirmInput("4100")),
                "a final 400");
            Assert.Equal(ResultCode.RemoteFailed, e.Code, "Code");
            Assert.Equal("CARDBRIDGE_RESULT_REMOTE_FAILED", e.ResultName, "ResultName");
            Assert.Equal("PARAM_ERROR", e.RemoteCode, "RemoteCode");
            Assert.Equal("参数错误", e.RemoteMessage, "RemoteMessage (non-ASCII round trip)");
            Assert.Equal(400, e.HttpStatus, "HttpStatus");
            Assert.Equal(1L, fx.Emulator.ConfirmHits("4100"), "a 4xx is final: no retry");

            var bad = Assert.Throws<EmulatorException>(() => fx.Emulator.PushWechatFault("{\"fault\":\"meltdown\"}"), "unknown fault");
            Assert.Equal("fault", bad.Field, "Field");
            bad = Assert.Throws<EmulatorException>(() => fx.Emulator.PushWechatFault("{\"fault\":\"status\",\"status\":1000}"),
                "status out of range");
            Assert.Equal("status", bad.Field, "Field");
            // Nothing was queued by the refused faults.
            fx.Emulator.AddUserCard("4101", WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
            fx.WechatPay.Confirm(WechatFixture.ConfirmInput("4101"));
            Assert.Equal(1L, fx.Emulator.ConfirmHits("4101"), "no fault was left queued");
        }

        [Test]
        public void ResumePendingCompletesAConfirmInterruptedBeforeARestart()
        {
            var path = Path.Combine(Path.GetTempPath(), "cardbridge-cs-wx-" + Guid.NewGuid().ToString("N") + ".db");
            try
            {
                fx.Emulator.AddUserCard("5005", WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
                using (var store = Store.OpenSqlite(path))
                using (var wp = new WechatPay(WechatFixture.Config(fx.Emulator.BaseUrl, 4), store))
                {
                    // Four attempts and the card read-back all meet a 503: the outcome is unknown.
                    for (var i = 0; i < 5; i++)
                    {
                        fx.Emulator.PushWechatFault("{\"fault\":\"status\",\"status\":503,\"code\":\"SERVICE_UNAVAILABLE\"}");
                    }
                    var e = Assert.Throws<RemoteUnknownException>(() => wp.Confirm(WechatFixture.ConfirmInput("5005")),
                        "budget exhausted");
                    Assert.Equal(ResultCode.RemoteUnknown, e.Code, "Code");
                }
                Assert.Equal(0L, fx.Emulator.ConfirmsApplied, "not applied yet");

                using (var store = Store.OpenSqlite(path))
                using (var wp = new WechatPay(WechatFixture.Config(fx.Emulator.BaseUrl, 4), store))
                {
                    var report = (List<object>)MiniJson.Parse(wp.ResumePending());
                    Assert.Equal(1, report.Count, "one pending confirm");
                    Assert.Equal(true, MiniJson.Get(report[0], "ok"), "resumed successfully");
                    Assert.True(!string.IsNullOrEmpty(MiniJson.Str(report[0], "id")), "the entry has an id");
                    var body = MiniJson.Get(MiniJson.Get(report[0], "answer"), "body");
                    Assert.Equal("EFFECTIVE", MiniJson.Str(body, "user_card_state"), "resumed answer");
                    Assert.Equal("[]", wp.ResumePending(), "nothing left pending");
                    Assert.Equal(1L, fx.Emulator.ConfirmsApplied, "applied once");
                }
            }
            finally
            {
                foreach (var suffix in new[] { "", "-wal", "-shm" })
                {
                    File.Delete(path + suffix);
                }
            }
        }

        [Test]
        public void GetUpdateAndPointsSyncReachTheEmulator()
        {
            fx.Emulator.AddUserCard("6006", WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
            var read = "{\"user_card_code\":\"6006\",\"brand_id\":\"1004\",\"card_id\":" + Json.Quote(WechatFixture.CardId) +
                ",\"openid\":" + Json.Quote(WechatFixture.Openid) + "}";
            var got = MiniJson.Get(MiniJson.Parse(fx.WechatPay.GetUserCard(read)), "body");
            Assert.Equal("6006", MiniJson.Str(got, "user_card_code"), "read: code");
            Assert.Equal("UNACTIVATED", MiniJson.Str(got, "user_card_state"), "read: state");

            var update = read.TrimEnd('}') + ",\"level\":\"gold\",\"phone_number\":\"13900000000\"}";
            var updated = MiniJson.Get(MiniJson.Parse(fx.WechatPay.UpdateUserCard(update)), "body");
            Assert.Equal("gold", MiniJson.Str(updated, "level"), "update: level");
            Assert.Equal("13900000000", MiniJson.Str(updated, "phone_number"), "update: phone decrypted");
            var card = (fx.Emulator.UserCard("6006"));
            Assert.Equal("13900000000", MiniJson.Str(card, "phone_number"), "update reached WeChat");

            var sync = "{\"out_request_no\":\"P1\",\"brand_id\":\"1004\",\"card_id\":" + Json.Quote(WechatFixture.CardId) +
                ",\"openid\":" + Json.Quote(WechatFixture.Openid) + ",\"user_card_code\":\"6006\",\"point_balance\":120}";
            Assert.Equal(204L, MiniJson.Get(MiniJson.Parse(fx.WechatPay.SyncUserPoints(sync)), "status"), "sync: 204");
            Assert.Equal(1L, fx.Emulator.WechatHits("/v3/brand/partner/card-member/user-points/sync"), "sync sent once");

            var missing = Assert.Throws<RemoteFailedException>(() => fx.WechatPay.GetUserCard(read.Replace("6006", "404")),
                "a card WeChat does not hold");
            Assert.Equal(404, missing.HttpStatus, "HttpStatus");

            // In public-key mode there are no platform certificates to download.
            Assert.Throws<ConfigurationException>(() => fx.WechatPay.RefreshCertificates(), "RefreshCertificates");
        }

        [Test]
        public void CertificateModeDownloadsThePlatformCertificate()
        {
            var dir = Path.Combine(Runner.Root, "tests", "fixtures", "wechatpay", "emulator");
            var certificate = ",\"platform_certificate\":{\"pem\":" + Json.Quote(File.ReadAllText(Path.Combine(dir, "platform_cert.pem"))) +
                ",\"private_key\":" + Json.Quote(File.ReadAllText(Path.Combine(dir, "platform_private.pem"))) + "}";
            using (var emulator = Emulator.Start(WechatFixture.EmulatorConfig(WechatFixture.ApiV3Key, certificate)))
            using (var wp = new WechatPay(WechatFixture.Config(emulator.BaseUrl, 2, certificateMode: true), Store.InMemory()))
            {
                var plain = Emulator.SampleUserCardCreate("7007", WechatFixture.CardId, WechatFixture.Openid);
                {
                    var request = emulator.Callback(WechatFixture.EventType, "user_card", plain);
                    using (var began = wp.CallbackBegin(request))
                    {
                        Assert.True(began.NeedsHandling, "a callback signed with the certificate key verifies");
                    }
                }
                Assert.Equal(1L, emulator.WechatHits("/v3/certificates"), "its serial triggered the download");
                Assert.Equal(1L, wp.RefreshCertificates(), "one certificate installed");
                Assert.Equal(2L, emulator.WechatHits("/v3/certificates"), "refreshed on request");
            }
        }

        [Test]
        public void ConfigurationAndParameterErrorsNameTheField()
        {
            var refused = Assert.Throws<EmulatorException>(() => Emulator.Start(WechatFixture.EmulatorConfig("testMchAPIv3Key0")),
                "16-byte APIv3 key (emulator)");
            Assert.Equal("INVALID_CONFIG", refused.Error, "Error");
            Assert.Equal("api_v3_key", refused.Field, "Field");
            Assert.True(refused.Message.IndexOf("testMchAPIv3Key0", StringComparison.Ordinal) < 0, "the key is never echoed");
            refused = Assert.Throws<EmulatorException>(() => Emulator.Start(
                WechatFixture.EmulatorConfig().Replace(Json.Quote(Keys.PlatformPrivate), "\"not a key\"")), "bad PEM");
            Assert.Equal("wechatpay_private_key", refused.Field, "Field");

            var e = Assert.Throws<ConfigurationException>(() => new WechatPay(
                WechatFixture.Config("http://127.0.0.1:9", 1, "testMchAPIv3Key0"), Store.InMemory()), "16-byte APIv3 key");
            Assert.Contains("api_v3_key", e.Message, "Message names the member");

            var plain = Emulator.SampleUserCardCreate("8008", WechatFixture.CardId, WechatFixture.Openid);
            refused = Assert.Throws<EmulatorException>(() => fx.Emulator.Callback(WechatFixture.EventType, "user_card", "{"),
                "plaintext not JSON");
            Assert.Equal(400, refused.Status, "Status");
            refused = Assert.Throws<EmulatorException>(() => fx.Emulator.Callback(WechatFixture.EventType, "user_card",
                plain.Replace(WechatFixture.Phone, new string('1', 300))), "phone too long for RSA-OAEP");
            Assert.Equal("PLAINTEXT_TOO_LONG", refused.Error, "Error");
            refused = Assert.Throws<EmulatorException>(() => fx.Emulator.UserCard("404"), "no such card");
            Assert.Equal(404, refused.Status, "Status");
            Assert.Equal("user_card_code", refused.Field, "Field");
        }

        [Test]
        public void SampleWithoutACodeLeavesTheCodeOut()
        {
            var with = MiniJson.Parse(Emulator.SampleUserCardCreate("1", WechatFixture.CardId, WechatFixture.Openid));
            Assert.Equal("1", MiniJson.Str(with, "user_card_code"), "user_card_code");
            Assert.Equal(WechatFixture.CardId, MiniJson.Str(with, "card_id"), "card_id");
            Assert.Equal(WechatFixture.Phone, MiniJson.Str(with, "phone_number"), "phone_number");
            foreach (var code in new[] { null, "" })
            {
                var without = MiniJson.Parse(Emulator.SampleUserCardCreate(code, WechatFixture.CardId, WechatFixture.Openid));
                Assert.Equal(null, MiniJson.Get(without, "user_card_code"), "no user_card_code for <" + code + ">");
                Assert.Equal(WechatFixture.Openid, MiniJson.Str(without, "openid"), "openid");
            }
        }
    }
}
