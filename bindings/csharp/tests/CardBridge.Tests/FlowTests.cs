// The Alipay+ flows through the public API, against the loopback emulator.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class FlowTests : IDisposable
    {
        private readonly Fixture fx = new Fixture();

        public void Dispose()
        {
            fx.Dispose();
        }

        [Test]
        public void NotificationIsDecidedByTheHostAndTheDuplicateIsReplayedByteIdentical()
        {
            var registration = Emulator.SampleRegistration("CS-REG-1");
            {
                var request = fx.Emulator.Request(Fixture.NotifyTarget, registration, Fixture.RequestTime());
                using (var began = fx.AlipayPlus.Begin(request))
                {
                    Assert.True(began.NeedsDecision && began.Response == null, "a signed registration reaches the host");
                    Assert.Equal(ApiKind.NotifyCardRegistration, began.Call.Api, "Api");
                    Assert.Equal(registration, began.Call.RequestJson, "RequestJson is the body as sent");
                    using (var answer = fx.AlipayPlus.Finish(began.Call, "{}"))
                    {
                        Assert.Equal(200, answer.Status, "status");
                        Assert.Contains("\"resultCode\":\"SUCCESS\"", answer.BodyText, "answer");
                        Assert.True(answer.Header("signature") != null, "answer is signed (case-insensitive lookup)");
                        Assert.Equal(Fixture.ClientId, answer.Header("Client-Id"), "Client-Id");
                        Assert.True(fx.Emulator.VerifyResponse(request, answer),
                            "answer signature verifies with the merchant public key");

                        {
                            var dup = fx.Registration("CS-REG-1");
                            using (var replay = fx.AlipayPlus.Begin(dup))
                            {
                                Assert.True(!replay.NeedsDecision && replay.Response != null, "duplicate answered by the library");
                                Assert.BytesEqual(answer.Body, replay.Response.Body, "duplicate answer body");
                                Assert.True(fx.Emulator.VerifyResponse(dup, replay.Response),
                                    "duplicate answer is signed for the duplicate request");
                            }
                        }
                        using (var other = Emulator.Start("{\"merchant_public_key\":" + Json.Quote(Keys.PlatformPublic) + "}"))
                        {
                            Assert.True(!other.VerifyResponse(request, answer), "the answer does not verify with another key");
                        }
                    }
                }
            }
        }

        [Test]
        public void AnExpiredClaimMakesTheNextDeliveryRedeliveredAndALateFinishGetsTheStoredAnswer()
        {
            using (var fx2 = new Fixture(extraConfig: ",\"claim_lease_ms\":100"))
            {
                var first = fx2.Registration("CS-REDELIVER-1");
                using (var slow = fx2.AlipayPlus.Begin(first))
                {
                    Assert.True(slow.NeedsDecision, "first delivery reaches the host");
                    Assert.Equal(0u, slow.Call.EarlierClaims, "first sight");
                    Assert.True(!slow.Call.Redelivered, "not redelivered");
                    System.Threading.Thread.Sleep(150);
                    {
                        var second = fx2.Registration("CS-REDELIVER-1");
                        using (var again = fx2.AlipayPlus.Begin(second))
                        {
                            Assert.True(again.NeedsDecision, "the expired claim is taken over");
                            Assert.Equal(1u, again.Call.EarlierClaims, "one earlier claim");
                            Assert.True(again.Call.Redelivered, "redelivered");
                            using (var answer = fx2.AlipayPlus.Finish(again.Call, "{}"))
                            using (var late = fx2.AlipayPlus.Finish(slow.Call,
                                "{\"result\":{\"resultStatus\":\"F\",\"resultCode\":\"PROCESS_FAIL\",\"resultMessage\":\"late\"}}"))
                            {
                                Assert.Contains("\"resultStatus\":\"S\"", answer.BodyText, "the new owner decided S");
                                Assert.Equal(answer.BodyText, late.BodyText, "the late host gets the stored answer");
                            }
                        }
                    }
                }
            }
        }

        [Test]
        public void TamperedRequestIsRefusedWithAccessDenied()
        {
            foreach (var tamper in new[] { Tamper.BodyByte, Tamper.Unsigned, Tamper.MalformedHeader, Tamper.WrongClientId })
            {
                {
                    var request = fx.Registration("CS-TAMPER-1", tamper);
                    using (var began = fx.AlipayPlus.Begin(request))
                    {
                        Assert.True(!began.NeedsDecision, tamper + ": answered without the host");
                        Assert.Equal(200, began.Response.Status, tamper + ": status");
                        Assert.Contains("\"resultCode\":\"ACCESS_DENIED\"", began.Response.BodyText, tamper + ": body");
                    }
                }
            }
            // The genuine request still reaches the host: refusals claimed nothing.
            {
                var request = fx.Registration("CS-TAMPER-1");
                using (var began = fx.AlipayPlus.Begin(request))
                {
                    Assert.True(began.NeedsDecision, "genuine request after tampered ones");
                }
            }
        }

        [Test]
        public void ARefusedCallCarriesItsSignatureDiagnosis()
        {
            var request = fx.Registration("CS-DIAG-1", Tamper.BodyByte);
            using (var began = fx.AlipayPlus.Begin(request))
            {
                Assert.True(!began.NeedsDecision, "answered without the host");
                var d = began.Response.Diagnosis;
                Assert.True(d != null, "a diagnosis");
                Assert.Contains("\"check\":\"mismatch\"", d, "the failed check");
                Assert.Contains("\"body_sha256\":", d, "a digest");
                Assert.True(!d.Contains("CS-DIAG-1"), "never the body: " + d);
            }
            // An answer that is not a signature refusal carries none.
            using (var began = fx.AlipayPlus.Begin(fx.Registration("CS-DIAG-2")))
            {
                Assert.True(began.NeedsDecision, "genuine request");
            }
        }

        [Test]
        public void InvalidRegistrationIsRefusedWithParamIllegal()
        {
            const string body = "{\"appId\":\"2102010113769000\",\"customerBelongsTo\":\"TNG\",\"requestId\":\"CS-BAD-1\"," +
                "\"customerId\":\"210911290000\",\"registrationFields\":[{\"fieldCode\":\"USER_NAME\",\"fieldValue\":\"ABCDEFGHIJKLMNOPQRSTU\"}]}";
            {
                var request = fx.Emulator.Request(Fixture.NotifyTarget, body, Fixture.RequestTime());
                using (var began = fx.AlipayPlus.Begin(request))
                {
                    Assert.True(!began.NeedsDecision, "answered without the host");
                    var text = began.Response.BodyText;
                    Assert.Contains("\"resultCode\":\"PARAM_ILLEGAL\"", text, "result code");
                    Assert.Contains("notifyCardRegistration.registrationFields[0].fieldValue", text, "the message names the field");
                    Assert.True(fx.Emulator.VerifyResponse(request, began.Response), "refusal is signed");
                }
            }
        }

        [Test]
        public void UnknownPathIsAnsweredByTheLibrary()
        {
            {
                var request = fx.Emulator.Request("/v2/pds/memberships/noSuchApi", "{}", Fixture.RequestTime());
                using (var began = fx.AlipayPlus.Begin(request))
                {
                    Assert.True(!began.NeedsDecision && began.Response != null, "no call for an unknown path");
                }
            }
        }

        [Test]
        public void BeginTakesRawPartsAsAnHttpServerReceivesThem()
        {
            {
                var request = fx.Registration("CS-RAW-1");
                var headers = request.Headers.Select(h => new KeyValuePair<string, string>(h.Key.ToLowerInvariant(), h.Value)).ToList();
                using (var began = fx.AlipayPlus.Begin("POST", request.Target, headers, request.Body))
                {
                    Assert.True(began.NeedsDecision, "lower-case header names are accepted");
                    using (fx.AlipayPlus.FinishUnknown(began.Call))
                    {
                    }
                }
                using (var began = fx.AlipayPlus.Begin("POST", request.Target, null, null))
                {
                    Assert.True(!began.NeedsDecision, "no headers and no body: answered, not thrown");
                    Assert.Contains("\"resultStatus\":\"F\"", began.Response.BodyText, "refused");
                }
            }
        }

        [Test]
        public void FinishUnknownAnswersUAndReleasesTheClaim()
        {
            {
                var request = fx.Registration("CS-U-1");
                using (var began = fx.AlipayPlus.Begin(request))
                using (var answer = fx.AlipayPlus.FinishUnknown(began.Call))
                {
                    Assert.Contains("\"resultStatus\":\"U\"", answer.BodyText, "U answer");
                    Assert.Contains("UNKNOWN_EXCEPTION", answer.BodyText, "U answer code");
                    Assert.True(fx.Emulator.VerifyResponse(request, answer), "signed");
                }
            }
            {
                var retry = fx.Registration("CS-U-1");
                using (var began = fx.AlipayPlus.Begin(retry))
                {
                    Assert.True(began.NeedsDecision, "the platform's retry reaches the host again");
                    using (var answer = fx.AlipayPlus.Finish(began.Call,
                        "{\"result\":{\"resultCode\":\"PROCESS_FAIL\",\"resultStatus\":\"F\",\"resultMessage\":\"no such member\"}}"))
                    {
                        Assert.Contains("\"resultCode\":\"PROCESS_FAIL\"", answer.BodyText, "final F answer");
                    }
                }
            }
        }

        [Test]
        public void InvalidDecisionKeepsTheCallUsable()
        {
            {
                var request = fx.Registration("CS-DEC-1");
                using (var began = fx.AlipayPlus.Begin(request))
                {
                    var e = Assert.Throws<ValidationException>(() => fx.AlipayPlus.Finish(began.Call,
                        "{\"result\":{\"resultCode\":\"NOT_A_CODE\",\"resultStatus\":\"S\"}}"), "bad decision");
                    Assert.True(e.Field != null && e.Field.StartsWith("notifyCardRegistrationResponse.result", StringComparison.Ordinal),
                        "field names the decision member: " + e.Field);
                    Assert.Throws<InvalidJsonException>(() => fx.AlipayPlus.Finish(began.Call, "{"), "not JSON");
                    using (var answer = fx.AlipayPlus.Finish(began.Call, "{}"))
                    {
                        Assert.Contains("SUCCESS", answer.BodyText, "corrected decision accepted");
                    }
                }
            }
        }

        [Test]
        public void IssueCardSucceedsThroughAFaultAndIsIdempotent()
        {
            string issueRequest;
            {
                var request = fx.Registration("CS-ISSUE-1");
                using (var began = fx.AlipayPlus.Begin(request))
                {
                    issueRequest = AlipayPlus.BuildIssueCard(began.Call.RequestJson, "M-000123", Fixture.RegisterDate, Fixture.CardFields);
                    using (fx.AlipayPlus.Finish(began.Call, "{}"))
                    {
                    }
                }
            }
            Assert.Contains("\"requestId\":\"CS-ISSUE-1\"", issueRequest, "issueCard reuses the requestId");
            fx.Emulator.PushFault("{\"fault\":\"unknown\"}");
            var response = fx.AlipayPlus.IssueCard(issueRequest);
            var cardNo = MiniJson.Str(MiniJson.Parse(response), "cardNo");
            Assert.True(!string.IsNullOrEmpty(cardNo), "answer has a cardNo: " + response);
            Assert.Equal(2L, fx.Emulator.Hits("CS-ISSUE-1"), "the U answer was retried once");
            Assert.Equal(1L, fx.Emulator.CardsIssued, "one card issued");
            Assert.Equal(response, fx.AlipayPlus.IssueCard(issueRequest), "the same request returns the stored outcome");
            Assert.Equal(2L, fx.Emulator.Hits("CS-ISSUE-1"), "without sending again");
            Assert.Equal("[]", fx.AlipayPlus.ResumePending(), "nothing pending");

            var changed = issueRequest.Replace("M-000123", "M-000999");
            var conflict = Assert.Throws<IdempotencyConflictException>(() => fx.AlipayPlus.IssueCard(changed),
                "same requestId, other body");
            Assert.Equal(ResultCode.IdempotencyConflict, conflict.Code, "Code");
        }

        [Test]
        public void IssueCardFinalFailureCarriesThePlatformAnswer()
        {
            var registration = Emulator.SampleRegistration("CS-FAIL-1");
            var request = AlipayPlus.BuildIssueCard(registration, "M-1", Fixture.RegisterDate, Fixture.CardFields);
            fx.Emulator.PushFault("{\"fault\":\"fail\",\"code\":\"USER_NOT_EXIST\",\"message\":\"no such user\"}");
            var e = Assert.Throws<RemoteFailedException>(() => fx.AlipayPlus.IssueCard(request), "F answer");
            Assert.Equal(ResultCode.RemoteFailed, e.Code, "Code");
            Assert.Equal("CARDBRIDGE_RESULT_REMOTE_FAILED", e.ResultName, "ResultName");
            Assert.Equal("USER_NOT_EXIST", e.RemoteCode, "RemoteCode");
            Assert.Equal("no such user", e.RemoteMessage, "RemoteMessage");
            Assert.Equal("F", e.RemoteStatus, "RemoteStatus");
            Assert.Equal(200, e.HttpStatus, "HttpStatus");
            Assert.Equal(1L, fx.Emulator.Hits("CS-FAIL-1"), "F is final: no retry");
        }

        [Test]
        public void UnknownOutcomeStaysPendingAndResumePendingCompletesIt()
        {
            using (var fx2 = new Fixture(sqlite: true,
                extraConfig: ",\"retry\":{\"max_attempts\":2,\"base_delay_ms\":5,\"max_delay_ms\":10,\"deadline_ms\":60000}"))
            {
                var registration = Emulator.SampleRegistration("CS-PEND-1");
                var request = AlipayPlus.BuildIssueCard(registration, "M-2", Fixture.RegisterDate, Fixture.CardFields);
                fx2.Emulator.PushFault("{\"fault\":\"unknown\"}");
                fx2.Emulator.PushFault("{\"fault\":\"http_status\",\"status\":503}");
                var e = Assert.Throws<RemoteUnknownException>(() => fx2.AlipayPlus.IssueCard(request), "budget exhausted");
                Assert.Equal(ResultCode.RemoteUnknown, e.Code, "Code");
                Assert.True(e.OutboxId != null && e.OutboxId.Contains("CS-"), "the pending entry's outbox id");
                Assert.Equal(2u, e.Attempts, "both attempts counted");
                Assert.Equal(503, e.HttpStatus, "the last attempt's HTTP status");
                var report = (List<object>)MiniJson.Parse(fx2.AlipayPlus.ResumePending());
                Assert.Equal(1, report.Count, "one pending entry");
                Assert.Equal(true, MiniJson.Get(report[0], "ok"), "resumed successfully");
                Assert.True(MiniJson.Str(MiniJson.Get(report[0], "response"), "cardNo") != null, "resumed answer has cardNo");
                Assert.Equal("[]", fx2.AlipayPlus.ResumePending(), "nothing left");
                Assert.Equal(1L, fx2.Emulator.CardsIssued, "one card");
            }
        }

        [Test]
        public void OutboxViewListsGetsAndCountsWithoutBodies()
        {
            using (var store = Store.InMemory())
            using (var ap = new AlipayPlus(Fixture.Config(fx.Emulator.BaseUrl,
                ",\"retry\":{\"max_attempts\":1,\"base_delay_ms\":5,\"max_delay_ms\":10,\"deadline_ms\":60000}"), store))
            {
                var registration = Emulator.SampleRegistration("CS-VIEW-1");
                var request = AlipayPlus.BuildIssueCard(registration, "M-3", Fixture.RegisterDate, Fixture.CardFields);
                fx.Emulator.PushFault("{\"fault\":\"http_status\",\"status\":502}");
                var e = Assert.Throws<RemoteUnknownException>(() => ap.IssueCard(request), "left pending");
                Assert.Equal(1L, store.OutboxCountPending(), "one pending");
                var pending = (List<object>)MiniJson.Parse(store.OutboxList("{\"state\":\"pending\"}"));
                Assert.Equal(1, pending.Count, "listed");
                Assert.Equal(e.OutboxId, MiniJson.Str(pending[0], "id"), "the id the exception named");
                Assert.True(!store.OutboxList().Contains("customerId"), "no body in the view");
                var one = MiniJson.Parse(store.OutboxGet(e.OutboxId));
                Assert.Equal(1, ((List<object>)MiniJson.Get(one, "attempt_log")).Count, "one attempt logged");
                var bad = Assert.Throws<CardbridgeArgumentException>(() => store.OutboxList("{\"state\":\"later\"}"), "bad filter");
                Assert.Equal("query.state", bad.Field, "Field");
                ap.ResumePending();
                Assert.Equal(0L, store.OutboxCountPending(), "nothing pending after resume");
            }
        }

        [Test]
        public void BuildIssueCardTakesTheOptionalMembers()
        {
            var registration = Emulator.SampleRegistration("CS-BUILD-OPT");
            var built = AlipayPlus.BuildIssueCard(registration, "M-1", Fixture.RegisterDate, Fixture.CardFields,
                externalCardNo: "CARD-0001", expireDate: "2027-11-23T00:00:00+08:00", extendInfo: "{\"tier\":1}");
            var members = MiniJson.Parse(built);
            Assert.Equal("CARD-0001", (string)MiniJson.Get(members, "externalCardNo"), "externalCardNo");
            Assert.Equal("2027-11-23T00:00:00+08:00", (string)MiniJson.Get(members, "expireDate"), "expireDate");
            Assert.Equal("{\"tier\":1}", (string)MiniJson.Get(members, "extendInfo"), "extendInfo");
            var plain = AlipayPlus.BuildIssueCard(registration, "M-1", Fixture.RegisterDate, Fixture.CardFields);
            Assert.True(!plain.Contains("externalCardNo") && !plain.Contains("extendInfo"), "no options, no members");
            var atLimit = AlipayPlus.BuildIssueCard(registration, "M-1", Fixture.RegisterDate, Fixture.CardFields,
                extendInfo: new string('x', 2048));
            Assert.Contains(new string('x', 2048), atLimit, "2048 characters of extendInfo accepted");

            // Just outside each limit: refused when built, naming the field path.
            var e = Assert.Throws<ValidationException>(() => AlipayPlus.BuildIssueCard(registration, "M-1",
                Fixture.RegisterDate, Fixture.CardFields, extendInfo: new string('x', 2049)), "2049-character extendInfo");
            Assert.Equal("issueCard.extendInfo", e.Field, "Field");
            Assert.Equal("2048", e.Limit, "Limit");
            Assert.True(!e.Message.Contains("xxxx"), "the value is not echoed");
            e = Assert.Throws<ValidationException>(() => AlipayPlus.BuildIssueCard(registration, "M-1",
                Fixture.RegisterDate, Fixture.CardFields, externalCardNo: new string('x', 65)), "65-character externalCardNo");
            Assert.Equal("issueCard.externalCardNo", e.Field, "Field");
            Assert.Equal("64", e.Limit, "Limit");
            e = Assert.Throws<ValidationException>(() => AlipayPlus.BuildIssueCard(registration, "M-1",
                Fixture.RegisterDate, Fixture.CardFields, expireDate: "tomorrow"), "bad expireDate");
            Assert.Equal("issueCard.expireDate", e.Field, "Field");
        }

        [Test]
        public void ValidationErrorsCarryFieldAndLimit()
        {
            var registration = Emulator.SampleRegistration("CS-VAL-1");
            var e = Assert.Throws<ValidationException>(() => AlipayPlus.BuildIssueCard(registration, new string('x', 65),
                Fixture.RegisterDate, Fixture.CardFields), "65-character externalCustomerId");
            Assert.Equal(ResultCode.Validation, e.Code, "Code");
            Assert.Equal("CARDBRIDGE_RESULT_VALIDATION", e.ResultName, "ResultName");
            Assert.Equal("issueCard.externalCustomerId", e.Field, "Field");
            Assert.Equal("64", e.Limit, "Limit");
            Assert.Contains("issueCard.externalCustomerId", e.Message, "Message");
            Assert.Equal(null, e.RemoteCode, "no RemoteCode");
            Assert.Equal(0, e.HttpStatus, "no HttpStatus");

            var bad = "{\"appId\":\"2102010113769000\",\"customerBelongsTo\":\"TNG\",\"requestId\":\"CS-BAD-2\"," +
                "\"customerId\":\"1\",\"externalCustomerId\":\"M-1\",\"registerDate\":\"yesterday\",\"cardFields\":[]}";
            e = Assert.Throws<ValidationException>(() => fx.AlipayPlus.IssueCard(bad), "bad registerDate");
            Assert.Equal("issueCard.registerDate", e.Field, "Field");
            Assert.Equal(0L, fx.Emulator.Hits("CS-BAD-2"), "nothing sent");

            var json = Assert.Throws<InvalidJsonException>(() => AlipayPlus.Validate("issueCard", "{", Direction.Outbound), "not JSON");
            Assert.Equal(ResultCode.InvalidJson, json.Code, "Code");
            Assert.True(json is ValidationException, "InvalidJsonException is a ValidationException");

            var refused = Assert.Throws<EmulatorException>(() => fx.Emulator.PushFault("{\"fault\":\"meltdown\"}"), "unknown fault");
            Assert.Equal("fault", refused.Field, "Field");

            var param = Assert.Throws<CardbridgeArgumentException>(() => AlipayPlus.Validate("issueCard", "{}", (Direction)7),
                "unknown direction");
            Assert.Equal(ResultCode.InvalidParameter, param.Code, "Code");
        }

        [Test]
        public void ValidateNormalisesAndRoundTripsUnicode()
        {
            var input = "{\"appId\":\"2102010113769000\",\"customerBelongsTo\":\"TNG\",\"requestId\":\"R-1\",\"customerId\":\"1\"," +
                "\"externalCustomerId\":\"M-1\",\"registerDate\":\"2019-11-27T19:07:41+08:00\"," +
                "\"cardFields\":[{\"fieldCode\":\"LEVEL\",\"fieldValue\":\"金卡 ✓\"},{\"fieldCode\":\"POINT\",\"fieldValue\":7}]}";
            var output = AlipayPlus.Validate("issueCard", input, Direction.Outbound);
            Assert.Contains("\"fieldValue\":\"金卡 ✓\"", output, "non-ASCII text survives both ways");
            Assert.Contains("{\"fieldCode\":\"POINT\",\"fieldValue\":\"7\"}", output, "number normalised to text");
        }

        [Test]
        public void ConfigurationAndKeyErrors()
        {
            var e = Assert.Throws<ConfigurationException>(() => new AlipayPlus("{\"client_id\":\"x\"}", Store.InMemory()),
                "incomplete configuration");
            Assert.Equal("CARDBRIDGE_RESULT_INVALID_CONFIG", e.ResultName, "ResultName");
            var config = Fixture.Config(null).Replace(Json.Quote(Keys.PlatformPublic), "\"not a key\"");
            var k = Assert.Throws<InvalidKeyException>(() => new AlipayPlus(config, Store.InMemory()), "bad key");
            Assert.Contains("config.platform_public_key", k.Message, "the message names the member");
            Assert.True(k is ConfigurationException, "InvalidKeyException is a ConfigurationException");
            Assert.Throws<InvalidKeyException>(() => PrivateKey.FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
                "bad PEM");
            Assert.Throws<InvalidKeyException>(() => PublicKey.FromPem(Keys.Read("rsa1024_private.pem")), "wrong kind of key");
            Assert.Throws<ConfigurationException>(() => Store.OpenSqlite(Path.GetTempPath()), "a directory is not a database");
            Assert.Throws<ConfigurationException>(() => new AlipayPlus(Fixture.Config(null)), "no store and no store_path");
        }

        [Test]
        public void StoreFromConfigurationPathAndPurge()
        {
            var path = fx.TempFile();
            var config = Fixture.Config(fx.Emulator.BaseUrl).TrimEnd('}') + ",\"store_path\":" + Json.Quote(path) + "}";
            using (var ap = new AlipayPlus(config))
            {
                {
                    var request = fx.Registration("CS-PATH-1");
                    using (var began = ap.Begin(request))
                    using (ap.Finish(began.Call, "{}"))
                    {
                    }
                }
                Assert.Equal(0L, ap.PurgeExpired(), "nothing is old enough");
                var farFuture = DateTimeOffset.UtcNow.AddDays(400).ToUnixTimeMilliseconds();
                Assert.Equal(1L, ap.PurgeExpired(farFuture), "the record expires after the retention");
            }
            Assert.True(File.Exists(path), "the SQLite file was created at store_path");
        }

        [Test]
        public void KeysRoundTrip()
        {
            using (var key = PrivateKey.FromPem(Keys.MerchantPrivate))
            {
                var pem = key.PublicKeyPem();
                Assert.Equal(Keys.MerchantPublic.Replace("\r", "").Trim(), pem.Replace("\r", "").Trim(), "public key PEM");
                using (PublicKey.FromPem(pem))
                {
                }
            }
        }
    }
}
