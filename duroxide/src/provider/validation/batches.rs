//! Conformance tests for the batch capabilities (`fetch_orchestration_items_cached`,
//! `fetch_work_items`, `complete_work_items`, `complete_work_items_and_lock`): a batch gives
//! what that many single calls would. Not here: the single-item contract (`queues`, `activities`).

use super::support::*;
use super::*;

// Batch fetches (`fetch_orchestration_items_cached`, `fetch_work_items`)
//
// A store may return fewer items than asked for (the default methods return one), so these
// tests accept any batch of 1..=max items and drain with further batches; what they pin is
// that a batch is what that many single fetches would have given.

type Cached<'a> = CachedLookup<'a>;

/// One `fetch_orchestration_items_cached` call, checked for what every batch must give: at
/// most `max` items, each a different instance with its own lock token.
async fn fetch_batch(
    p: &Arc<dyn Provider>,
    filter: &FetchFilter,
    cached: &Cached<'_>,
    max: usize,
) -> Vec<OrchestrationItem> {
    let items = p
        .fetch_orchestration_items_cached(LOCK, filter, cached, max)
        .await
        .expect("fetch_orchestration_items_cached");
    assert!(items.len() <= max, "asked for at most {max} instances, got {}", items.len());
    let instances: HashSet<&str> = items.iter().map(|i| i.instance.as_str()).collect();
    assert_eq!(instances.len(), items.len(), "an instance appears once per batch");
    assert_distinct_tokens(items.iter().map(|i| i.lock_token.as_str()));
    for item in &items {
        assert_eq!(item.record.instance, item.instance, "the record belongs to the item's instance");
        assert!(!item.messages.is_empty(), "'{}' was locked without messages", item.instance);
    }
    items
}

/// Batch-fetches until nothing is left; the instances come out oldest first across batches.
async fn drain_batches(
    p: &Arc<dyn Provider>,
    filter: &FetchFilter,
    cached: &Cached<'_>,
    max: usize,
) -> Vec<OrchestrationItem> {
    let mut items = Vec::new();
    loop {
        let batch = fetch_batch(p, filter, cached, max).await;
        if batch.is_empty() {
            break;
        }
        items.extend(batch);
        assert!(items.len() <= 100, "batch fetches keep returning locked instances");
    }
    assert_distinct_tokens(items.iter().map(|i| i.lock_token.as_str()));
    items
}

fn no_cache(_: &str) -> Option<CachedPosition> {
    None
}

fn instances_of(items: &[OrchestrationItem]) -> Vec<&str> {
    items.iter().map(|i| i.instance.as_str()).collect()
}

fn assert_distinct_tokens<'a>(tokens: impl Iterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    for t in tokens {
        assert!(!t.is_empty(), "an item without a lock token");
        assert!(seen.insert(t), "lock token {t} handed out twice: each item needs its own");
    }
}

/// One `fetch_work_items` call, checked like [`fetch_batch`].
async fn fetch_work_batch(
    p: &Arc<dyn Provider>,
    lock: Duration,
    w: &WorkerIdentity,
    max: usize,
) -> Vec<ActivityWorkItem> {
    let items = p.fetch_work_items(lock, w, max).await.expect("fetch_work_items");
    assert!(items.len() <= max, "asked for at most {max} activities, got {}", items.len());
    assert_distinct_tokens(items.iter().map(|w| w.lock_token.as_str()));
    items
}

/// Batch-fetches activities until none is runnable for `w`.
async fn drain_work_batches(
    p: &Arc<dyn Provider>,
    lock: Duration,
    w: &WorkerIdentity,
    max: usize,
) -> Vec<ActivityWorkItem> {
    let mut items = Vec::new();
    loop {
        let batch = fetch_work_batch(p, lock, w, max).await;
        if batch.is_empty() {
            break;
        }
        items.extend(batch);
        assert!(items.len() <= 100, "batch fetches keep returning locked activities");
    }
    assert_distinct_tokens(items.iter().map(|w| w.lock_token.as_str()));
    items
}

fn event_ids(items: &[ActivityWorkItem]) -> Vec<u64> {
    items.iter().map(|w| w.event_id).collect()
}

/// A batch takes the oldest ready instances, each with only its own messages; locked
/// instances are not fetched again, and later batches take the rest in order.
pub async fn batch_fetch_takes_oldest_instances(f: Factory) {
    let p = f.create_provider().await;
    assert!(fetch_batch(&p, &all(), &no_cache, 2).await.is_empty(), "an empty store has nothing to fetch");
    let order = ["zeta", "alpha", "mid"];
    for id in order {
        create(&p, id).await;
    }
    for id in order.iter().rev() {
        p.enqueue_message(external(id, &format!("for-{id}"), "")).await.unwrap();
    }
    let first = fetch_batch(&p, &all(), &no_cache, 2).await;
    assert!(!first.is_empty(), "three instances are ready");
    assert_eq!(instances_of(&first), order[..first.len()], "oldest message first");
    let rest = drain_batches(&p, &all(), &no_cache, 2).await;
    assert_eq!(instances_of(&rest), order[first.len()..], "later batches take the rest, in order");
    let items: Vec<_> = first.into_iter().chain(rest).collect();
    assert_distinct_tokens(items.iter().map(|i| i.lock_token.as_str()));
    for item in &items {
        assert_eq!(
            names(&item.messages),
            vec!["StartOrchestration".to_string(), format!("for-{}", item.instance)]
        );
        assert_eq!((item.attempt, item.history_len), (1, 0));
        assert!(item.history.is_empty() && item.history_error.is_none());
    }
    fetch_none(&p).await;
    assert!(fetch_batch(&p, &all(), &no_cache, 3).await.is_empty(), "every instance is locked");
}

/// Each item of a batch is a lock of its own: committing one leaves the others locked,
/// and each is committed or abandoned with its own token.
pub async fn batch_fetched_items_commit_independently(f: Factory) {
    let p = f.create_provider().await;
    for id in ["one", "two", "three"] {
        create(&p, id).await;
    }
    let items = drain_batches(&p, &all(), &no_cache, 3).await;
    assert_eq!(instances_of(&items), ["one", "two", "three"]);
    let [one, two, three] = <[OrchestrationItem; 3]>::try_from(items).unwrap();
    p.commit_turn(&one.lock_token, turn(1, vec![started("input")], InstanceState::Running))
        .await
        .expect("commit with the first item's token");
    fetch_none(&p).await; // the commit released only its own instance
    p.renew_orchestration_lock(&two.lock_token, LOCK).await.expect("the second lock is still held");
    p.abandon_orchestration_item(&two.lock_token, None, None, Attempt::Counted)
        .await
        .expect("abandon with the second item's token");
    assert_lock_lost(
        p.commit_turn(&one.lock_token, turn(1, Vec::new(), InstanceState::Running)).await,
        "reused token",
    );
    let again = fetch_some(&p, "two").await;
    assert_eq!(again.messages, two.messages);
    assert_eq!(again.attempt, 2);
    fetch_none(&p).await; // "three" is still locked
    p.commit_turn(&three.lock_token, turn(1, vec![started("input")], InstanceState::Running))
        .await
        .expect("commit with the third item's token");
    assert_eq!(p.read_history("one", None).await.unwrap().len(), 1);
    assert_eq!(p.read_history("three", None).await.unwrap().len(), 1);
    assert!(p.read_history("two", None).await.unwrap().is_empty());
}

/// A batch only takes instances the filter allows and nobody else holds.
pub async fn batch_fetch_honours_filter_and_locks(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("held", "A", None, "").await.unwrap();
    let held = fetch_some(&p, "held").await;
    p.create_instance("b", "B", None, "").await.unwrap();
    p.create_instance("a1", "A", None, "").await.unwrap();
    p.create_instance("a2", "A", None, "").await.unwrap();
    let only_a = only(&[("A", &[])]);
    let items = drain_batches(&p, &only_a, &no_cache, 3).await;
    assert_eq!(instances_of(&items), ["a1", "a2"], "neither the held instance nor the filtered one");
    assert!(fetch_batch(&p, &only(&[("C", &[])]), &no_cache, 3).await.is_empty());
    let items = drain_batches(&p, &all(), &no_cache, 3).await;
    assert_eq!(instances_of(&items), ["b"], "the held instance stays with its holder");
    p.renew_orchestration_lock(&held.lock_token, LOCK).await.expect("the holder keeps its lock");
}

/// In a batch, as in a single cached fetch, a current cache lets the store skip the
/// history (with the stored `history_len`), and a stale one or one of another execution
/// gets the full history.
pub async fn batch_fetch_uses_cached_history_lengths(f: Factory) {
    let p = f.create_provider().await;
    let ids = ["current", "stale", "other-exec"];
    for id in ids {
        with_activities(&p, id, &[2, 3]).await;
    }
    for id in ids {
        p.enqueue_message(external(id, "e", "")).await.unwrap();
    }
    let cached = |instance: &str| match instance {
        "current" => Some(CachedPosition { execution_id: 1, last_event_id: 3 }),
        "stale" => Some(CachedPosition { execution_id: 1, last_event_id: 2 }),
        "other-exec" => Some(CachedPosition { execution_id: 7, last_event_id: 3 }),
        _ => None,
    };
    let items = drain_batches(&p, &all(), &cached, 3).await;
    assert_eq!(instances_of(&items), ids);
    for item in &items {
        let stored = p.read_history(&item.instance, None).await.unwrap();
        assert_eq!(stored.len(), 3);
        assert_eq!(item.history_len, 3, "history_len of '{}'", item.instance);
        assert!(item.history_error.is_none());
        assert_eq!(names(&item.messages), vec!["e"]);
        assert_eq!(item.record.execution_id, 1);
        if item.instance == "current" {
            assert!(
                item.history.is_empty() || item.history == stored,
                "a current cache gets no history or all of it: {:?}",
                item.history
            );
        } else {
            assert_eq!(item.history, stored, "'{}' needs the full history", item.instance);
        }
    }
}

/// A batch of activities is what that many single fetches would give: oldest first, each
/// with its own token, completed one by one; later batches take the rest.
pub async fn batch_work_fetch_takes_oldest_activities(f: Factory) {
    let p = f.create_provider().await;
    assert!(fetch_work_batch(&p, LOCK, &worker("w1"), 3).await.is_empty(), "an empty store has no work");
    with_activities(&p, "bw", &[2, 3, 4, 5]).await;
    let first = fetch_work_batch(&p, LOCK, &worker("w1"), 3).await;
    assert!(!first.is_empty(), "four activities are runnable");
    assert_eq!(event_ids(&first), [2, 3, 4][..first.len()], "oldest first");
    let rest = drain_work_batches(&p, LOCK, &worker("w1"), 3).await;
    assert_eq!(event_ids(&rest), [2, 3, 4, 5][first.len()..], "later batches take the rest, in order");
    let items: Vec<_> = first.into_iter().chain(rest).collect();
    assert_distinct_tokens(items.iter().map(|w| w.lock_token.as_str()));
    for w in &items {
        assert_eq!((w.instance.as_str(), w.execution_id, w.name.as_str()), ("bw", 1, "Act"));
        assert_eq!(w.input, format!("in-{}", w.event_id));
        assert_eq!((w.attempt, w.session_id.as_deref(), w.session_claimed), (1, None, false));
    }
    assert!(fetch_work(&p, LOCK).await.is_none(), "every activity is locked");
    // Completing one leaves the others locked and completable with their own tokens.
    let done = &items[1];
    p.complete_work_item(&done.lock_token, completion("bw", done.event_id, &format!("r{}", done.event_id)))
        .await
        .unwrap();
    assert_lock_lost(
        p.complete_work_item(&done.lock_token, completion("bw", done.event_id, "again")).await,
        "second complete",
    );
    assert!(fetch_work_batch(&p, LOCK, &worker("w1"), 3).await.is_empty(), "the others stay locked");
    for w in items.iter().filter(|w| w.event_id != done.event_id) {
        p.renew_work_item(&w.lock_token, LOCK).await.expect("still held");
        p.complete_work_item(&w.lock_token, completion("bw", w.event_id, &format!("r{}", w.event_id)))
            .await
            .unwrap();
    }
    let item = fetch_some(&p, "bw").await;
    let mut completed: Vec<_> = item
        .messages
        .iter()
        .map(|m| match m {
            OrchestratorMessage::ActivityCompleted { event_id, result, .. } => (*event_id, result.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    completed.sort();
    let expected: Vec<_> = (2..=5).map(|id| (id, format!("r{id}"))).collect();
    assert_eq!(completed, expected, "one completion per activity");
}

/// Activities fetched in a batch whose lock expires are fetched again (next attempt, new
/// tokens); the old tokens no longer complete them.
pub async fn batch_work_locks_expire(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "bx", &[2, 3, 4]).await;
    let first = drain_work_batches(&p, SHORT, &worker("w1"), 3).await;
    assert_eq!(event_ids(&first), [2, 3, 4]);
    assert!(fetch_work_batch(&p, LOCK, &worker("w2"), 3).await.is_empty(), "locked for now");
    sleep_ms(450).await;
    let again = drain_work_batches(&p, LOCK, &worker("w2"), 3).await;
    assert_eq!(event_ids(&again), [2, 3, 4], "expired locks make them fetchable again");
    assert!(again.iter().all(|w| w.attempt == 2), "{again:?}");
    assert_distinct_tokens(first.iter().chain(&again).map(|w| w.lock_token.as_str()));
    for (old, new) in first.iter().zip(&again) {
        assert_lock_lost(
            p.complete_work_item(&old.lock_token, completion("bx", old.event_id, "old")).await,
            "stale",
        );
        p.complete_work_item(&new.lock_token, completion("bx", new.event_id, "new")).await.unwrap();
    }
}

/// A batch skips locked and delayed activities and is empty when nothing is runnable.
pub async fn batch_work_fetch_skips_locked_activities(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "idle").await;
    assert!(fetch_work_batch(&p, LOCK, &worker("w1"), 3).await.is_empty(), "nothing scheduled");
    with_activities(&p, "bl", &[2, 3, 4, 5]).await;
    let locked = fetch_work(&p, LOCK).await.expect("work");
    assert_eq!(locked.event_id, 2);
    let delayed = fetch_work(&p, LOCK).await.expect("work");
    p.abandon_work_item(&delayed.lock_token, Some(LOCK)).await.unwrap();
    let items = drain_work_batches(&p, LOCK, &worker("w1"), 3).await;
    assert_eq!(event_ids(&items), [4, 5], "neither the locked nor the delayed activity");
    assert!(fetch_work_batch(&p, LOCK, &worker("w1"), 3).await.is_empty());
    p.complete_work_item(&locked.lock_token, completion("bl", 2, "r")).await.unwrap();
}

/// Session work keeps its place in a batch: when the oldest activity is on a session, the
/// batch starts with it (claiming the session), as a single fetch would; another worker's
/// batches leave that session's work alone.
pub async fn batch_work_fetch_keeps_session_order(f: Factory) {
    let p = f.create_provider().await;
    let queued = [(2, Some("s1")), (3, None), (4, Some("s1")), (5, None)];
    with_session_activities(&p, "bs", &queued).await;
    let (w1, w2) = (worker("w1"), worker("w2"));
    let first = fetch_work_batch(&p, LOCK, &w1, 3).await;
    assert!(!first.is_empty(), "w1 may claim s1");
    assert_eq!(event_ids(&first), [2, 3, 4][..first.len()], "oldest first, the session item included");
    assert_eq!(first[0].session_id.as_deref(), Some("s1"));
    assert!(first[0].session_claimed, "the first session item claims the session");
    for w in &first[1..] {
        let expected = queued.iter().find(|(id, _)| *id == w.event_id).unwrap().1;
        assert_eq!(w.session_id.as_deref(), expected);
        assert!(!w.session_claimed, "w1 claimed s1 with its first item");
    }
    let taken: Vec<u64> = event_ids(&first);
    let left: Vec<_> = queued.iter().filter(|(id, _)| !taken.contains(id)).collect();
    let others = drain_work_batches(&p, LOCK, &w2, 3).await;
    let free: Vec<u64> = left.iter().filter(|(_, s)| s.is_none()).map(|(id, _)| *id).collect();
    assert_eq!(event_ids(&others), free, "w2 gets the free work only, s1 is held by w1");
    let mine = drain_work_batches(&p, LOCK, &w1, 3).await;
    let held: Vec<u64> = left.iter().filter(|(_, s)| s.is_some()).map(|(id, _)| *id).collect();
    assert_eq!(event_ids(&mine), held, "the holder gets the rest of its session");
    assert!(mine.iter().all(|w| w.session_id.as_deref() == Some("s1") && !w.session_claimed));
}

// Batch completions (`complete_work_items`)

/// A batch of completions does what that many single calls would, in the order given: each
/// held item completes once and its result is queued in that order; a token no longer
/// held, or given a second time in the batch, fails alone and queues nothing.
pub async fn batch_completions_fail_alone_and_keep_order(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "bc", &[2, 3, 4]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(fetch_work(&p, LOCK).await.expect("a scheduled activity"));
    }
    let [a, b, c] = <[ActivityWorkItem; 3]>::try_from(held).unwrap();
    p.complete_work_item(&a.lock_token, completion("bc", a.event_id, "a")).await.expect("complete a");
    let results = p
        .complete_work_items(vec![
            (a.lock_token.clone(), completion("bc", a.event_id, "a again")),
            (c.lock_token.clone(), completion("bc", c.event_id, "c")),
            (b.lock_token.clone(), completion("bc", b.event_id, "b")),
            (c.lock_token.clone(), completion("bc", c.event_id, "c again")),
        ])
        .await;
    assert_eq!(results.len(), 4, "one result per item");
    let mut results = results.into_iter();
    assert_lock_lost(results.next().unwrap(), "completed before the batch");
    results.next().unwrap().expect("c is held");
    results.next().unwrap().expect("b is held");
    assert_lock_lost(results.next().unwrap(), "c given a second time");
    let item = fetch_some(&p, "bc").await;
    let queued: Vec<String> = item
        .messages
        .iter()
        .map(|m| match m {
            OrchestratorMessage::ActivityCompleted { result, .. } => result.clone(),
            other => other.type_name().to_string(),
        })
        .collect();
    assert_eq!(queued, ["a", "c", "b"]);
    assert!(fetch_work(&p, LOCK).await.is_none(), "every activity completed");
}
