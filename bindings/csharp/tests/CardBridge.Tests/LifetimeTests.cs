// Misuse, finalization and concurrency: what SafeHandles and the wrappers promise.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class LifetimeTests : IDisposable
    {
        private readonly Fixture fx = new Fixture();

        public void Dispose()
        {
            fx.Dispose();
        }

        [Test]
        public void UseAfterDisposeThrowsObjectDisposedException()
        {
            var store = Store.InMemory();
            store.Dispose();
            Assert.Throws<ObjectDisposedException>(() => new AlipayPlus(Fixture.Config(null), store), "disposed Store");

            var ap = new AlipayPlus(Fixture.Config(fx.Emulator.BaseUrl), Store.InMemory());
            ap.Dispose();
            Assert.Throws<ObjectDisposedException>(() => ap.IssueCard("{}"), "AlipayPlus.IssueCard");
            Assert.Throws<ObjectDisposedException>(() => ap.ResumePending(), "AlipayPlus.ResumePending");
            Assert.Throws<ObjectDisposedException>(() => ap.PurgeExpired(), "AlipayPlus.PurgeExpired");
            {
                var request = fx.Registration("CS-DISPOSED-1");
                Assert.Throws<ObjectDisposedException>(() => ap.Begin(request), "AlipayPlus.Begin");
                using (var began = fx.AlipayPlus.Begin(request))
                {
                    Assert.Throws<ObjectDisposedException>(() => ap.Finish(began.Call, "{}"), "Finish on a disposed integration");
                    began.Call.Dispose();
                    Assert.Throws<ObjectDisposedException>(() => fx.AlipayPlus.Finish(began.Call, "{}"), "Finish a disposed call");
                    Assert.Throws<ObjectDisposedException>(() => fx.AlipayPlus.FinishUnknown(began.Call), "FinishUnknown a disposed call");
                }
                // Disposed undecided: the claim is released, so the retry reaches the host.
                using (var again = fx.AlipayPlus.Begin(request))
                {
                    Assert.True(again.NeedsDecision, "claim released by Dispose");
                    using (var answer = fx.AlipayPlus.Finish(again.Call, "{}"))
                    {
                        answer.Dispose();
                        Assert.Equal(200, answer.Status, "managed copies stay readable after Dispose");
                        Assert.True(fx.Emulator.VerifyResponse(request, answer), "headers and body stay readable");
                    }
                }
            }

            var key = PrivateKey.FromPem(Keys.MerchantPrivate);
            key.Dispose();
            Assert.Throws<ObjectDisposedException>(() => key.PublicKeyPem(), "PrivateKey.PublicKeyPem");
        }

        [Test]
        public void FinishingTwiceThrowsAlreadyUsed()
        {
            {
                var request = fx.Registration("CS-TWICE-1");
                using (var began = fx.AlipayPlus.Begin(request))
                {
                    using (fx.AlipayPlus.Finish(began.Call, "{}"))
                    {
                    }
                    var e = Assert.Throws<AlreadyUsedException>(() => fx.AlipayPlus.Finish(began.Call, "{}"), "second Finish");
                    Assert.Equal(ResultCode.AlreadyUsed, e.Code, "Code");
                    Assert.Equal("call", e.Field, "Field names the call");
                    Assert.Throws<AlreadyUsedException>(() => fx.AlipayPlus.FinishUnknown(began.Call), "FinishUnknown after Finish");
                }
            }
        }

        [Test]
        public void NullArgumentsThrowArgumentNullException()
        {
            var ap = fx.AlipayPlus;
            Assert.Throws<ArgumentNullException>(() => new AlipayPlus(null), "AlipayPlus(null)");
            Assert.Throws<ArgumentNullException>(() => ap.IssueCard(null), "IssueCard(null)");
            Assert.Throws<ArgumentNullException>(() => ap.Begin(null, "/", null, null), "Begin(null method)");
            Assert.Throws<ArgumentNullException>(() => ap.Begin("POST", null, null, null), "Begin(null target)");
            Assert.Throws<ArgumentNullException>(() => ap.Begin("POST", "/",
                new[] { new KeyValuePair<string, string>("X", null) }, null), "Begin(null header value)");
            Assert.Throws<ArgumentNullException>(() => ap.Finish(null, "{}"), "Finish(null call)");
            Assert.Throws<ArgumentNullException>(() => ap.FinishUnknown(null), "FinishUnknown(null)");
            Assert.Throws<ArgumentNullException>(() => AlipayPlus.BuildIssueCard("{}", null, "d", "[]"), "BuildIssueCard");
            Assert.Throws<ArgumentNullException>(() => AlipayPlus.Validate(null, "{}", Direction.Inbound), "Validate");
            Assert.Throws<ArgumentNullException>(() => Store.OpenSqlite(null), "OpenSqlite(null)");
            Assert.Throws<ArgumentNullException>(() => PrivateKey.FromPem(null), "PrivateKey.FromPem(null)");
            Assert.Throws<ArgumentNullException>(() => PublicKey.FromPem(null), "PublicKey.FromPem(null)");
            Assert.Throws<ArgumentException>(() => ap.IssueCard("\ud800"), "a lone surrogate is not UTF-8");
        }

        /// <summary>Creates and drops many handles without Dispose, collecting between native calls, so
        /// finalizers run while other objects are in use; everything must keep working.</summary>
        [Test]
        public void GcStressWithUndisposedHandles()
        {
            var config = Fixture.Config(fx.Emulator.BaseUrl);
            for (var i = 0; i < 60; i++)
            {
                var store = Store.InMemory();
                var ap = new AlipayPlus(config, store);
                store = null;
                Collect();
                var request = fx.Registration("CS-GC-" + i);
                Collect();
                var began = ap.Begin(request);
                Collect();
                Assert.True(began.NeedsDecision, "iteration " + i + ": call");
                var call = began.Call;
                began = null;
                Collect();
                var answer = ap.Finish(call, "{}");
                Collect();
                Assert.Contains("SUCCESS", answer.BodyText, "iteration " + i + ": answer");
                Assert.True(fx.Emulator.VerifyResponse(request, answer), "iteration " + i + ": signed");
                // An undecided call dropped on the floor: its finalizer releases the claim.
                DropUndecidedCall("CS-GC-DROP-" + i);
                Assert.True(ReachesHostAfterCollecting("CS-GC-DROP-" + i), "iteration " + i + ": the finalizer released the claim");
                Assert.Equal(ResultCode.Validation, Assert.Throws<ValidationException>(
                    () => AlipayPlus.BuildIssueCard("{}", "x", "y", "[]"), "error objects").Code, "error path");
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void DropUndecidedCall(string requestId)
        {
            var began = fx.AlipayPlus.Begin(fx.Registration(requestId));
            Assert.True(began.NeedsDecision, requestId + ": call");
        }

        /// <summary>Whether a retry of <paramref name="requestId"/> reaches the host once the dropped call
        /// is finalized. Mono scans stacks conservatively, so a stale slot may keep the dropped object
        /// alive through one collection: a few rounds are allowed (bounded, no timing).</summary>
        private bool ReachesHostAfterCollecting(string requestId)
        {
            for (var round = 0; round < 10; round++)
            {
                Collect();
                {
                    var retried = fx.AlipayPlus.Begin(fx.Registration(requestId));
                    if (retried.NeedsDecision)
                    {
                        return true;
                    }
                    Assert.Contains("\"resultStatus\":\"U\"", retried.Response.BodyText, "still claimed: U");
                }
            }
            return false;
        }

        private static void Collect()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        /// <summary>Eight threads share one integration (SQLite store) and one emulator: registrations,
        /// duplicates, one requestId raced by every thread, and card issuance.</summary>
        [Test]
        public void EightThreadsShareOneIntegration()
        {
            const int threads = 8;
            const int perThread = 5;
            using (var shared = new Fixture(sqlite: true))
            {
                var errors = new List<Exception>();
                var decided = 0;
                var start = new Barrier(threads);
                var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
                {
                    try
                    {
                        start.SignalAndWait();
                        // Every thread races on the same requestId: exactly one gets the call.
                        {
                            var race = shared.Registration("CS-RACE");
                            using (var began = shared.AlipayPlus.Begin(race))
                            {
                                if (began.NeedsDecision)
                                {
                                    Interlocked.Increment(ref decided);
                                    using (shared.AlipayPlus.Finish(began.Call, "{}"))
                                    {
                                    }
                                }
                                else
                                {
                                    var status = MiniJson.Str(MiniJson.Get(MiniJson.Parse(began.Response.BodyText), "result"), "resultStatus");
                                    Assert.True(status == "S" || status == "U", "a racing duplicate gets the stored S or U: " + status);
                                }
                            }
                        }
                        for (var i = 0; i < perThread; i++)
                        {
                            var id = "CS-T" + t + "-" + i;
                            string issue;
                            {
                                var request = shared.Registration(id);
                                using (var began = shared.AlipayPlus.Begin(request))
                                {
                                    Assert.True(began.NeedsDecision, id + ": call");
                                    issue = AlipayPlus.BuildIssueCard(began.Call.RequestJson, "M-" + t + "-" + i,
                                        Fixture.RegisterDate, Fixture.CardFields);
                                    using (var answer = shared.AlipayPlus.Finish(began.Call, "{}"))
                                    {
                                        var dup = shared.Registration(id);
                                        using (var replay = shared.AlipayPlus.Begin(dup))
                                        {
                                            Assert.BytesEqual(answer.Body, replay.Response.Body, id + ": duplicate replay");
                                        }
                                    }
                                }
                            }
                            Assert.Contains("\"cardNo\"", shared.AlipayPlus.IssueCard(issue), id + ": issued");
                        }
                    }
                    catch (Exception e)
                    {
                        lock (errors)
                        {
                            errors.Add(e);
                        }
                    }
                })).ToList();
                workers.ForEach(w => w.Start());
                workers.ForEach(w => w.Join());
                Assert.True(errors.Count == 0, "thread failures: " + string.Join("\n", errors.Select(e => e.ToString())));
                Assert.Equal(1, decided, "exactly one racing thread was asked to decide");
                Assert.Equal((long)(threads * perThread), shared.Emulator.CardsIssued, "cards issued");
            }
        }
    }
}
