// Every accepted form of `#[activity(retry(..))]`: each backoff, the defaults, compound
// durations, a per-attempt timeout, keys in any order with a trailing comma, beside `name`;
// the policy lands in `ActivityDefinition::retry_policy`, and an activity without `retry`
// keeps the trait's `None`.
use std::time::Duration;

use duroxide::prelude::*;
use duroxide::{ActivityDefinition, Backoff, RetryPolicy};

#[activity(retry(max_attempts = 5, backoff = "exponential", initial = "100ms", max = "30s"))]
async fn exponential(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

#[activity(name = "Linear", retry(max = "1h", initial = "1m30s", backoff = "linear", max_attempts = 10,))]
async fn linear(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

#[activity(retry(max_attempts = 3u32, backoff = "fixed", initial = "250ms", timeout = "2m"), name = "Fixed")]
async fn fixed(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

#[activity(retry(max_attempts = 2, backoff = "none"))]
async fn immediate(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

/// Defaults: exponential from 1s, capped at 60s.
#[activity(retry(max_attempts = 4))]
pub async fn defaults(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

// A default `max` never undercuts an explicit `initial`.
#[activity(retry(max_attempts = 4, initial = "2m"))]
async fn long_initial(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

#[activity(retry(max_attempts = 1))]
async fn once(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

#[activity]
async fn plain(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    Ok(input)
}

fn main() {
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    assert_eq!(
        exponential::retry_policy(),
        Some(RetryPolicy {
            max_attempts: 5,
            backoff: Backoff::Exponential { initial: ms(100), max: secs(30) },
            timeout: None,
        })
    );
    assert_eq!(<linear as ActivityDefinition>::NAME, "Linear");
    assert_eq!(
        linear::retry_policy(),
        Some(RetryPolicy {
            max_attempts: 10,
            backoff: Backoff::Linear { initial: secs(90), max: secs(3600) },
            timeout: None,
        })
    );
    assert_eq!(<fixed as ActivityDefinition>::NAME, "Fixed");
    assert_eq!(
        fixed::retry_policy(),
        Some(RetryPolicy { max_attempts: 3, backoff: Backoff::Fixed(ms(250)), timeout: Some(secs(120)) })
    );
    assert_eq!(
        immediate::retry_policy(),
        Some(RetryPolicy { max_attempts: 2, backoff: Backoff::None, timeout: None })
    );
    assert_eq!(
        defaults::retry_policy(),
        Some(RetryPolicy {
            max_attempts: 4,
            backoff: Backoff::Exponential { initial: secs(1), max: secs(60) },
            timeout: None,
        })
    );
    assert_eq!(
        long_initial::retry_policy(),
        Some(RetryPolicy {
            max_attempts: 4,
            backoff: Backoff::Exponential { initial: secs(120), max: secs(120) },
            timeout: None,
        })
    );
    assert_eq!(once::retry_policy().map(|p| p.max_attempts), Some(1));
    assert_eq!(plain::retry_policy(), None);

    let _registry = ActivityRegistry::builder()
        .register_typed(exponential)
        .register_typed(linear)
        .register_typed(fixed)
        .register_typed(immediate)
        .register_typed(defaults)
        .register_typed(long_initial)
        .register_typed(once)
        .register_typed(plain)
        .build();

    // Still an ordinary async fn for unit tests.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(exponential(ActivityContext::for_test("exponential"), 7)).unwrap(), 7);
}
