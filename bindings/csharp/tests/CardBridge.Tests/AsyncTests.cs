// Issue 10.4 / 10.5 from C#: a per-call deadline, IssueCardAsync, and cancellation that stops the retries
// between attempts and leaves the request pending. No timing assertions: a 1 ms deadline is shorter than any
// backoff wait, and the cancellation lands in a backoff wait of at least one second.
using System;
using CardBridge.Testing;
using System.Threading;
using System.Threading.Tasks;

namespace CardBridge.Tests
{
    public class AsyncTests : IDisposable
    {
        private const string SlowRetry = ",\"retry\":{\"max_attempts\":4,\"base_delay_ms\":2000,\"max_delay_ms\":2000,\"deadline_ms\":60000}";
        private readonly Fixture fx = new Fixture(extraConfig: SlowRetry);

        public void Dispose()
        {
            CardbridgeLog.SetHandler(CardbridgeLogLevel.Error, null);
            fx.Dispose();
        }

        private string IssueRequest(string requestId)
        {
            var request = fx.Registration(requestId);
            using (var began = fx.AlipayPlus.Begin(request))
            {
                var issue = AlipayPlus.BuildIssueCard(began.Call.RequestJson, "M-000123", Fixture.RegisterDate, Fixture.CardFields);
                using (fx.AlipayPlus.Finish(began.Call, "{}"))
                {
                }
                return issue;
            }
        }

        [Test]
        public void AShortDeadlineMakesOneAttemptAndTheRequestStaysPending()
        {
            var issue = IssueRequest("CS-OPT-1");
            fx.Emulator.PushFault("{\"fault\":\"http_status\",\"status\":500}");
            var e = Assert.Throws<RemoteUnknownException>(() => fx.AlipayPlus.IssueCard(issue, TimeSpan.FromMilliseconds(1)),
                "1 ms deadline");
            Assert.Equal(1u, e.Attempts, "one attempt");
            Assert.Equal("CS-OPT-1", e.RequestId, "names the requestId");
            Assert.Equal(500, e.HttpStatus, "last HTTP status");
            Assert.Equal(1L, fx.Emulator.Hits("CS-OPT-1"), "the configured budget was overridden");
            Assert.Contains("\"pending_entries\":1}", fx.AlipayPlus.Metrics(), "pending");
            Assert.Throws<ArgumentOutOfRangeException>(() => fx.AlipayPlus.IssueCard(issue, TimeSpan.Zero), "zero deadline");

            var card = fx.AlipayPlus.IssueCardAsync(issue).Result;
            Assert.Contains("\"cardNo\"", card, "the async call completed the pending request");
            Assert.Contains("\"pending_entries\":0}", fx.AlipayPlus.Metrics(), "nothing pending");
        }

        [Test]
        public void CancellingIssueCardAsyncStopsTheRetriesAndLeavesTheRequestPending()
        {
            var issue = IssueRequest("CS-ASYNC-1");
            var firstRetry = new ManualResetEventSlim(false);
            CardbridgeLog.SetHandler(CardbridgeLogLevel.Warning, e =>
            {
                if (e.Message == "retry scheduled")
                {
                    firstRetry.Set();
                }
            });
            fx.Emulator.PushFault("{\"fault\":\"unknown\"}");
            using (var cts = new CancellationTokenSource())
            {
                var task = fx.AlipayPlus.IssueCardAsync(issue, cancellationToken: cts.Token);
                Assert.True(firstRetry.Wait(TimeSpan.FromSeconds(30)), "the first attempt was answered U");
                Assert.True(!task.IsCompleted, "the call is waiting to retry on a pool thread");
                cts.Cancel();
                try
                {
                    task.Wait();
                    throw new AssertionException("the task completed");
                }
                catch (AggregateException ae)
                {
                    Assert.True(ae.InnerException is OperationCanceledException, "cancelled: " + ae.InnerException);
                }
                Assert.True(task.IsCanceled, "the task is Canceled");
            }
            Assert.Equal(1L, fx.Emulator.Hits("CS-ASYNC-1"), "no attempt after the cancellation");
            var metrics = fx.AlipayPlus.Metrics();
            Assert.Contains("\"outcomes_unknown\":1,", metrics, "left pending");
            Assert.Contains("\"pending_entries\":1}", metrics, "left pending");
        }
    }
}
