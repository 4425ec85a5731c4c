// WeChat Pay misuse, finalization and concurrency: what the SafeHandles and wrappers promise.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using CardBridge.Testing;

namespace CardBridge.Tests
{
    public class WechatLifetimeTests : IDisposable
    {
        private readonly WechatFixture fx = new WechatFixture();

        public void Dispose()
        {
            fx.Dispose();
        }

        [Test]
        public void UseAfterDisposeThrowsObjectDisposedException()
        {
            var store = Store.InMemory();
            store.Dispose();
            Assert.Throws<ObjectDisposedException>(() => new WechatPay(WechatFixture.Config(fx.Emulator.BaseUrl), store),
                "disposed Store");

            var wp = new WechatPay(WechatFixture.Config(fx.Emulator.BaseUrl), Store.InMemory());
            wp.Dispose();
            wp.Dispose(); // idempotent
            var input = WechatFixture.ConfirmInput("9001");
            Assert.Throws<ObjectDisposedException>(() => wp.Confirm(input), "Confirm");
            Assert.Throws<ObjectDisposedException>(() => wp.GetUserCard(input), "GetUserCard");
            Assert.Throws<ObjectDisposedException>(() => wp.UpdateUserCard(input), "UpdateUserCard");
            Assert.Throws<ObjectDisposedException>(() => wp.SyncUserPoints(input), "SyncUserPoints");
            Assert.Throws<ObjectDisposedException>(() => wp.ResumePending(), "ResumePending");
            Assert.Throws<ObjectDisposedException>(() => wp.RefreshCertificates(), "RefreshCertificates");
            {
                var request = fx.CardCreated("9002");
                Assert.Throws<ObjectDisposedException>(() => wp.CallbackBegin(request), "CallbackBegin");
                using (var began = fx.WechatPay.CallbackBegin(request))
                {
                    var ev = began.Event;
                    Assert.Throws<ObjectDisposedException>(() => wp.CallbackFinish(ev, true), "finish on a disposed integration");
                    ev.Dispose();
                    Assert.Throws<ObjectDisposedException>(() => fx.WechatPay.CallbackFinish(ev, true), "finish a disposed event");
                    Assert.Equal("USER_CARD.CREATE", ev.Kind, "managed copies stay readable after Dispose");
                    Assert.Contains("\"resource\"", ev.Json, "Json stays readable after Dispose");
                }
                // Disposed unfinished: the claim is released, so the redelivery reaches the host.
                using (var again = fx.WechatPay.CallbackBegin(request))
                {
                    Assert.True(again.NeedsHandling, "claim released by Dispose");
                }
            }
        }

        [Test]
        public void SecondCallbackFinishThrowsAlreadyUsed()
        {
            {
                var request = fx.CardCreated("9003");
                using (var began = fx.WechatPay.CallbackBegin(request))
                {
                    using (fx.WechatPay.CallbackFinish(began.Event, true))
                    {
                    }
                    var e = Assert.Throws<AlreadyUsedException>(() => fx.WechatPay.CallbackFinish(began.Event, true),
                        "second CallbackFinish");
                    Assert.Equal(ResultCode.AlreadyUsed, e.Code, "Code");
                    Assert.Equal("CARDBRIDGE_RESULT_ALREADY_USED", e.ResultName, "ResultName");
                    Assert.Equal("event", e.Field, "Field names the event");
                    Assert.Throws<AlreadyUsedException>(() => fx.WechatPay.CallbackFinish(began.Event, false, "late"),
                        "refusing after accepting");
                }
            }
            {
                var request = fx.CardCreated("9004");
                using (var began = fx.WechatPay.CallbackBegin(request))
                {
                    using (fx.WechatPay.CallbackFinish(began.Event, false, "retry later"))
                    {
                    }
                    Assert.Throws<AlreadyUsedException>(() => fx.WechatPay.CallbackFinish(began.Event, true),
                        "accepting after refusing");
                }
            }
        }

        [Test]
        public void NullArgumentsThrowArgumentNullException()
        {
            var wp = fx.WechatPay;
            Assert.Throws<ArgumentNullException>(() => new WechatPay(null), "WechatPay(null)");
            Assert.Throws<ArgumentNullException>(() => wp.Confirm((string)null), "Confirm(null)");
            Assert.Throws<ArgumentNullException>(() => wp.Confirm((global::CardBridge.ConfirmInput)null), "Confirm(null input)");
            Assert.Throws<ArgumentNullException>(() => wp.GetUserCard(null), "GetUserCard(null)");
            Assert.Throws<ArgumentNullException>(() => wp.UpdateUserCard(null), "UpdateUserCard(null)");
            Assert.Throws<ArgumentNullException>(() => wp.SyncUserPoints((string)null), "SyncUserPoints(null)");
            Assert.Throws<ArgumentNullException>(() => wp.SyncUserPoints((PointsSyncInput)null), "SyncUserPoints(null input)");
            Assert.Throws<ArgumentNullException>(() => wp.CallbackBegin(null, "/", null, null), "CallbackBegin(null method)");
            Assert.Throws<ArgumentNullException>(() => wp.CallbackBegin("POST", null, null, null), "CallbackBegin(null target)");
            Assert.Throws<ArgumentNullException>(() => wp.CallbackBegin("POST", "/",
                new[] { new KeyValuePair<string, string>(null, "x") }, null), "CallbackBegin(null header name)");
            Assert.Throws<ArgumentNullException>(() => wp.CallbackFinish(null, true), "CallbackFinish(null event)");
            Assert.Throws<ArgumentException>(() => wp.Confirm("\ud800"), "a lone surrogate is not UTF-8");
        }

        /// <summary>Creates and drops many handles (integrations, events, responses, requests) without
        /// Dispose, collecting between native calls, so finalizers run while other objects are in use.</summary>
        [Test]
        public void GcStressWithUndisposedEvents()
        {
            var config = WechatFixture.Config(fx.Emulator.BaseUrl);
            for (var i = 0; i < 40; i++)
            {
                var code = (10000 + i).ToString();
                var store = Store.InMemory();
                var wp = new WechatPay(config, store);
                store = null;
                Collect();
                var request = fx.CardCreated(code);
                Collect();
                var began = wp.CallbackBegin(request);
                Collect();
                Assert.True(began.NeedsHandling, "iteration " + i + ": event");
                var ev = began.Event;
                began = null;
                Collect();
                Assert.Contains("\"user_card_code\":\"" + code + "\"", ev.Json, "iteration " + i + ": event JSON");
                var answer = wp.CallbackFinish(ev, true);
                Collect();
                Assert.Equal(200, answer.Status, "iteration " + i + ": answer");
                if (i % 8 == 0)
                {
                    fx.Emulator.AddUserCard(code, WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
                    Assert.Contains("EFFECTIVE", wp.Confirm(WechatFixture.ConfirmInput(code)), "iteration " + i + ": confirm");
                }
                // An unfinished event dropped on the floor: its finalizer releases the claim.
                var redelivery = fx.CardCreated(code);
                DropUnfinishedEvent(redelivery);
                Assert.True(ReachesHostAfterCollecting(redelivery), "iteration " + i + ": the finalizer released the claim");
                Assert.Equal(ResultCode.Validation, Assert.Throws<ValidationException>(
                    () => fx.WechatPay.Confirm(WechatFixture.ConfirmInput(code, ",\"card_color\":\"yellow\"")),
                    "error objects").Code, "error path");
            }
        }

        /// <summary>Delivers <paramref name="request"/> and drops the event unfinished and undisposed. Mono
        /// scans stacks conservatively, and a stale slot of this thread's stack can keep a dropped object
        /// alive indefinitely, so the event lives only on a thread of its own that has exited on return.</summary>
        private void DropUnfinishedEvent(HttpRequest request)
        {
            Exception failure = null;
            var worker = new Thread(() =>
            {
                try
                {
                    var began = fx.WechatPay.CallbackBegin(request);
                    Assert.True(began.NeedsHandling, "dropped event: first delivery");
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            worker.Start();
            worker.Join();
            if (failure != null)
            {
                throw failure;
            }
        }

        /// <summary>Whether a redelivery of <paramref name="request"/> reaches the host once the dropped event
        /// is finalized; a few collections are allowed (bounded, no timing).</summary>
        private bool ReachesHostAfterCollecting(HttpRequest request)
        {
            for (var round = 0; round < 10; round++)
            {
                Collect();
                using (var redelivered = fx.WechatPay.CallbackBegin(request))
                {
                    if (redelivered.NeedsHandling)
                    {
                        return true;
                    }
                    Assert.Equal(500, redelivered.Response.Status, "still claimed: 500");
                }
            }
            return false;
        }

        private static void Collect()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        /// <summary>Four threads share one integration (SQLite store) and one emulator: one callback raced
        /// by every thread, then callbacks, duplicates and confirms per thread.</summary>
        [Test]
        public void FourThreadsShareOneWechatPay()
        {
            const int threads = 4;
            const int perThread = 4;
            using (var shared = new WechatFixture(sqlite: true))
            {
                var race = shared.CardCreated("20000");
                var errors = new List<Exception>();
                var handled = 0;
                var start = new Barrier(threads);
                var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
                {
                    try
                    {
                        start.SignalAndWait();
                        // Every thread delivers the same notification: exactly one gets the event.
                        using (var began = shared.WechatPay.CallbackBegin(race))
                        {
                            if (began.NeedsHandling)
                            {
                                Interlocked.Increment(ref handled);
                                using (shared.WechatPay.CallbackFinish(began.Event, true))
                                {
                                }
                            }
                            else
                            {
                                var status = began.Response.Status;
                                Assert.True(status == 500 || status == 200,
                                    "a racing duplicate is told to retry or acknowledged: " + status);
                            }
                        }
                        for (var i = 0; i < perThread; i++)
                        {
                            var code = (21000 + 100 * t + i).ToString();
                            shared.Emulator.AddUserCard(code, WechatFixture.CardId, WechatFixture.Openid, WechatFixture.BrandId);
                            {
                                var request = shared.CardCreated(code);
                                using (var began = shared.WechatPay.CallbackBegin(request))
                                {
                                    Assert.True(began.NeedsHandling, code + ": event");
                                    Assert.Contains("\"user_card_code\":\"" + code + "\"", began.Event.Json, code + ": event JSON");
                                    using (var answer = shared.WechatPay.CallbackFinish(began.Event, true))
                                    {
                                        Assert.Equal(200, answer.Status, code + ": accepted");
                                    }
                                }
                                using (var dup = shared.WechatPay.CallbackBegin(request))
                                {
                                    Assert.True(!dup.NeedsHandling && dup.Response.Status == 200, code + ": duplicate acknowledged");
                                }
                            }
                            var confirmed = shared.WechatPay.Confirm(WechatFixture.ConfirmInput(code));
                            Assert.Contains("\"user_card_state\":\"EFFECTIVE\"", confirmed, code + ": confirmed");
                            Assert.Equal(WechatFixture.WithoutRequestId(confirmed),
                                WechatFixture.WithoutRequestId(shared.WechatPay.Confirm(WechatFixture.ConfirmInput(code))),
                                code + ": repeat answered from the outbox");
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
                Assert.Equal(1, handled, "exactly one racing thread handled the event");
                Assert.Equal((long)(threads * perThread), shared.Emulator.ConfirmsApplied, "confirms applied");
                for (var t = 0; t < threads; t++)
                {
                    for (var i = 0; i < perThread; i++)
                    {
                        var code = (21000 + 100 * t + i).ToString();
                        Assert.Equal(1L, shared.Emulator.ConfirmHits(code), code + ": sent once");
                    }
                }
            }
        }
    }
}
