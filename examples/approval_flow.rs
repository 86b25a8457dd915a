//! An expense approval with a 7-day timeout, and its tests on the test kit
//! (`duroxide::testing`): the tests run the 7 days in virtual time, with the email and
//! payment activities mocked, in milliseconds. `cargo test -p duroxide-examples --example
//! approval_flow` runs them; `cargo run --example approval_flow` runs the flow for real.

use duroxide::Either2;
use duroxide::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// How long an approver has to answer.
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// An expense to approve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expense {
    /// Its id.
    pub id: String,
    /// Amount in cents.
    pub cents: u64,
    /// Who must approve it.
    pub approver: String,
}

/// The approver's answer: the payload of the `Decision` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    /// Pay it.
    Approve,
    /// Do not pay it, and why.
    Reject(String),
}

/// How the approval ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Approved and paid, with the payment's receipt.
    Paid(String),
    /// Rejected, with the reason.
    Rejected(String),
    /// Nobody answered within [`APPROVAL_TIMEOUT`].
    Expired,
}

/// Asks the approver (an email in real life).
#[activity]
async fn request_approval(_ctx: ActivityContext, expense: Expense) -> Result<(), ActivityError> {
    println!("  [email] {}: please approve {} ({} cents)", expense.approver, expense.id, expense.cents);
    Ok(())
}

/// Pays the expense and returns the receipt (a payment service in real life).
#[activity]
async fn pay(_ctx: ActivityContext, expense: Expense) -> Result<String, ActivityError> {
    Ok(format!("receipt-{}", expense.id))
}

/// Ask, then wait for the decision or the timeout, whichever comes first.
#[orchestration(name = "ExpenseApproval")]
async fn expense_approval(
    ctx: OrchestrationContext,
    expense: Expense,
) -> Result<Outcome, OrchestrationError> {
    ctx.call(request_approval, expense.clone()).await?;
    ctx.set_custom_status("waiting for approval");
    let decision = ctx.schedule_wait("Decision");
    let deadline = ctx.schedule_timer(APPROVAL_TIMEOUT);
    let outcome = match ctx.select2(decision, deadline).await {
        Either2::First(data) => match serde_json::from_str::<Decision>(&data) {
            Ok(Decision::Approve) => Outcome::Paid(ctx.call(pay, expense).await?),
            Ok(Decision::Reject(reason)) => Outcome::Rejected(reason),
            Err(e) => return Err(OrchestrationError::from(format!("undecodable decision {data:?}: {e}"))),
        },
        Either2::Second(()) => Outcome::Expired,
    };
    ctx.set_custom_status(format!("{outcome:?}"));
    Ok(outcome)
}

fn registries() -> (ActivityRegistry, OrchestrationRegistry) {
    let activities = ActivityRegistry::builder().register_typed(request_approval).register_typed(pay).build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(expense_approval).build();
    (activities, orchestrations)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (activities, orchestrations) = registries();
    let store = Arc::new(SqliteProvider::new("sqlite:./approval_flow.db", None).await?);
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let id = format!("expense-{}", std::process::id());
    let expense = Expense { id: id.clone(), cents: 12_300, approver: "alice".into() };
    client.start_typed(expense_approval, &id, &expense).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("{id}: {:?}", client.get_orchestration_status(&id).await?);
    client.raise_event(&id, "Decision", serde_json::to_string(&Decision::Approve)?).await?;
    let outcome = client.wait_for_typed(expense_approval, &id, Duration::from_secs(10)).await?;
    println!("{id}: {outcome:?}");
    rt.shutdown(None).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use duroxide::testing::{HarnessError, TestHarness, TypedActivityMock};
    use duroxide::{EventKind, OrchestrationStatus};
    use std::time::Instant;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn expense() -> Expense {
        Expense { id: "exp-1".into(), cents: 12_300, approver: "alice".into() }
    }

    /// A harness with both activities mocked, and the mocks to assert on.
    async fn harness() -> (TestHarness, TypedActivityMock<request_approval>, TypedActivityMock<pay>) {
        let emails = TypedActivityMock::new(request_approval, |_: Expense| async { Ok(()) });
        let payments =
            TypedActivityMock::new(pay, |e: Expense| async move { Ok(format!("fake-receipt-{}", e.id)) });
        let (activities, orchestrations) = registries();
        let h = TestHarness::builder(activities, orchestrations)
            .mock(&emails)
            .mock(&payments)
            .build()
            .await
            .unwrap();
        (h, emails, payments)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn approved_on_day_two_is_paid_once() {
        let (h, emails, payments) = harness().await;
        h.start_typed(expense_approval, "exp-1", &expense()).await.unwrap();
        h.settle().await.unwrap();
        assert_eq!(emails.inputs(), [expense()], "the approver was asked");
        assert_eq!(h.custom_status("exp-1").await.unwrap().as_deref(), Some("waiting for approval"));

        let asked_at = h.now_ms();
        h.advance(2 * DAY).await.unwrap();
        h.raise_event("exp-1", "Decision", serde_json::to_string(&Decision::Approve).unwrap()).await.unwrap();
        let outcome = h.wait_for_typed(expense_approval, "exp-1").await.unwrap();

        assert_eq!(outcome, Outcome::Paid("fake-receipt-exp-1".into()));
        assert_eq!(payments.inputs(), [expense()], "paid exactly once, the right expense");
        let history = h.history("exp-1").await.unwrap();
        let decided = history.iter().find(|e| matches!(e.kind, EventKind::ExternalRaised { .. })).unwrap();
        assert_eq!(decided.timestamp_ms - asked_at, 2 * 24 * 3_600_000, "decided on day two");
        h.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nobody_answers_and_it_expires_after_seven_days_in_milliseconds() {
        let (h, _emails, payments) = harness().await;
        let started = h.now_ms();
        let real = Instant::now();
        h.start_typed(expense_approval, "exp-2", &expense()).await.unwrap();
        assert_eq!(h.wait_for_typed(expense_approval, "exp-2").await.unwrap(), Outcome::Expired);
        assert!(real.elapsed() < Duration::from_secs(1), "{:?}", real.elapsed());
        assert_eq!(h.now_ms() - started, APPROVAL_TIMEOUT.as_millis() as u64);
        assert_eq!(payments.call_count(), 0, "an expired expense is never paid");
        assert_eq!(h.custom_status("exp-2").await.unwrap().as_deref(), Some("Expired"));
        h.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rejection_one_minute_before_the_deadline_still_counts() {
        let (h, _emails, payments) = harness().await;
        h.start_typed(expense_approval, "exp-3", &expense()).await.unwrap();
        h.advance(APPROVAL_TIMEOUT - Duration::from_secs(60)).await.unwrap();
        let reject = Decision::Reject("no receipt attached".into());
        h.raise_event("exp-3", "Decision", serde_json::to_string(&reject).unwrap()).await.unwrap();
        let outcome = h.wait_for_typed(expense_approval, "exp-3").await.unwrap();
        assert_eq!(outcome, Outcome::Rejected("no receipt attached".into()));
        assert_eq!(payments.call_count(), 0);
        h.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_withdrawn_expense_is_cancelled_on_the_day_it_is_withdrawn() {
        let (h, _emails, payments) = harness().await;
        h.start_typed(expense_approval, "exp-4", &expense()).await.unwrap();
        h.advance(3 * DAY).await.unwrap();
        h.cancel("exp-4", "withdrawn by the employee").await.unwrap();
        match h.wait_for("exp-4").await.unwrap() {
            OrchestrationStatus::Cancelled { reason } => assert!(reason.contains("withdrawn"), "{reason}"),
            other => panic!("expected cancellation, got {other:?}"),
        }
        assert_eq!(payments.call_count(), 0);
        h.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_garbled_decision_fails_the_instance_and_says_why() {
        let (h, _emails, _payments) = harness().await;
        h.start_typed(expense_approval, "exp-5", &expense()).await.unwrap();
        h.raise_event("exp-5", "Decision", "yes please").await.unwrap();
        match h.wait_for_typed(expense_approval, "exp-5").await {
            Err(HarnessError::Failed(details)) => {
                assert!(details.message.contains("yes please"), "{details}")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        h.shutdown().await;
    }
}
