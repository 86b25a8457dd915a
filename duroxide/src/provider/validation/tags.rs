//! Conformance tests for activity routing by tag: a fetch returns only the work its
//! worker's [`TagFilter`] accepts (single and batch fetches, session work), tags and the
//! scheduling orchestration travel with the work item, and the store summary reports
//! the backlog per tag. Not here: plain activity work (`activities`), sessions
//! (`sessions`).

use super::support::*;
use super::*;

/// A started instance whose first turn scheduled activity `id` with tag `tag` (and session
/// `session`) for each entry, in order.
async fn with_tagged(p: &Arc<dyn Provider>, instance: &str, acts: &[(u64, Option<&str>, Option<&str>)]) {
    create(p, instance).await;
    let item = fetch_some(p, instance).await;
    let mut events = vec![started("input")];
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    for &(id, tag, session) in acts {
        events.push(scheduled(id, "Act", &format!("in-{id}")));
        c.activities.push(ActivityWorkItem {
            tag: tag.map(str::to_string),
            session_id: session.map(str::to_string),
            orchestration_name: NAME.into(),
            orchestration_version: "1.0.0".into(),
            ..work(instance, 1, id, "Act", &format!("in-{id}"))
        });
    }
    c.new_events = events;
    p.commit_turn(&item.lock_token, c).await.expect("commit turn with tagged activities");
}

fn serving(id: &str, tags: TagFilter) -> WorkerIdentity {
    WorkerIdentity { tags, ..worker(id) }
}

/// Event ids of everything `w` can fetch now, one fetch at a time.
async fn drain_one_by_one(p: &Arc<dyn Provider>, w: &WorkerIdentity) -> Vec<u64> {
    let mut ids = Vec::new();
    while let Some(item) = p.fetch_work_item(LOCK, w).await.expect("fetch_work_item") {
        ids.push(item.event_id);
    }
    ids
}

const MIXED: &[(u64, Option<&str>, Option<&str>)] = &[
    (2, Some("gpu"), None),
    (3, None, None),
    (4, Some("video"), None),
    (5, None, None),
    (6, Some("gpu"), None),
];

/// Each filter takes exactly the work it names, oldest first, whether fetched one at a
/// time or in a batch; work it does not take never holds back work it does.
pub async fn fetch_takes_only_the_tags_the_worker_serves(f: Factory) {
    let cases: [(TagFilter, Vec<u64>); 5] = [
        (TagFilter::Untagged, vec![3, 5]),
        (TagFilter::tags(["gpu"]), vec![2, 6]),
        (TagFilter::tags(["gpu", "video"]), vec![2, 4, 6]),
        (TagFilter::untagged_and(["video"]), vec![3, 4, 5]),
        (TagFilter::Any, vec![2, 3, 4, 5, 6]),
    ];
    for (filter, expected) in cases {
        let p = f.create_provider().await;
        with_tagged(&p, "t", MIXED).await;
        let w = serving("w1", filter.clone());
        assert_eq!(drain_one_by_one(&p, &w).await, expected, "one by one with {filter:?}");

        let p = f.create_provider().await;
        with_tagged(&p, "t", MIXED).await;
        let batch = p.fetch_work_items(LOCK, &w, 10).await.expect("fetch_work_items");
        let ids: Vec<u64> = batch.iter().map(|i| i.event_id).collect();
        assert_eq!(ids, expected, "batch with {filter:?}");
    }
}

/// A worker that serves nothing (an orchestration-only node, or an empty tag list) gets
/// nothing, however much work is queued.
pub async fn worker_serving_no_tags_fetches_nothing(f: Factory) {
    let p = f.create_provider().await;
    with_tagged(&p, "t", MIXED).await;
    for filter in [TagFilter::None, TagFilter::tags(Vec::<String>::new())] {
        let w = serving("w1", filter.clone());
        assert!(p.fetch_work_item(LOCK, &w).await.unwrap().is_none(), "{filter:?}");
        assert!(p.fetch_work_items(LOCK, &w, 10).await.unwrap().is_empty(), "{filter:?}");
    }
    // The work is still there for the workers that serve it.
    assert_eq!(drain_one_by_one(&p, &serving("w2", TagFilter::Any)).await, vec![2, 3, 4, 5, 6]);
}

/// Session work is routed by tag too: a worker that does not serve the tag neither gets
/// the work nor claims the session.
pub async fn tagged_session_work_goes_only_to_workers_serving_the_tag(f: Factory) {
    let p = f.create_provider().await;
    with_tagged(&p, "t", &[(2, Some("gpu"), Some("s1")), (3, Some("gpu"), Some("s1"))]).await;
    let plain = serving("plain", TagFilter::Untagged);
    assert!(p.fetch_work_item(LOCK, &plain).await.unwrap().is_none());
    assert!(p.fetch_work_items(LOCK, &plain, 10).await.unwrap().is_empty());
    let gpu = serving("gpu-node", TagFilter::tags(["gpu"]));
    let first = p.fetch_work_item(LOCK, &gpu).await.unwrap().expect("the gpu worker takes it");
    assert_eq!((first.event_id, first.session_id.as_deref()), (2, Some("s1")));
    assert!(first.session_claimed, "the gpu worker claimed the session");
    assert_eq!(first.tag.as_deref(), Some("gpu"));
}

/// The tag and the scheduling orchestration's name and version come back with the work
/// item after a fetch, an abandon, and an export and import into another store.
pub async fn tag_and_orchestration_travel_with_the_work_item(f: Factory) {
    let p = f.create_provider().await;
    with_tagged(&p, "t", &[(2, Some("gpu"), None)]).await;
    let snap = p.export_instance("t").await.unwrap();
    assert_eq!(snap.activities[0].tag.as_deref(), Some("gpu"));
    assert_eq!(snap.activities[0].orchestration_name, NAME);
    let gpu = serving("w1", TagFilter::tags(["gpu"]));
    let w = p.fetch_work_item(LOCK, &gpu).await.unwrap().expect("gpu work");
    assert_eq!(
        (w.tag.as_deref(), w.orchestration_name.as_str(), w.orchestration_version.as_str()),
        (Some("gpu"), NAME, "1.0.0")
    );
    p.abandon_work_item(&w.lock_token, None).await.unwrap();
    let again = p.fetch_work_items(LOCK, &gpu, 4).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].tag.as_deref(), again[0].orchestration_version.as_str()), (Some("gpu"), "1.0.0"));
    let target = f.create_provider().await;
    target.import_instance(snap).await.unwrap();
    let moved = target.fetch_work_item(LOCK, &gpu).await.unwrap().expect("imported gpu work");
    assert_eq!((moved.tag.as_deref(), moved.orchestration_name.as_str()), (Some("gpu"), NAME));
    assert!(target.fetch_work_item(LOCK, &worker("plain")).await.unwrap().is_none());
}

/// The store summary lists the activities waiting per tag (untagged included) with the
/// age of the oldest, counting queued work whether locked or not, and describe lists an
/// instance's queued activities with their tags.
pub async fn summary_and_describe_report_work_per_tag(f: Factory) {
    let p = f.create_provider().await;
    with_tagged(&p, "t", MIXED).await;
    // One gpu item is running (locked): it is no longer waiting.
    let taken = p.fetch_work_item(LOCK, &serving("w1", TagFilter::tags(["gpu"]))).await.unwrap();
    assert_eq!(taken.map(|t| t.event_id), Some(2));
    let summary = p.store_summary().await.unwrap();
    let waiting: Vec<(Option<&str>, u64)> =
        summary.activity_tags.iter().map(|t| (t.tag.as_deref(), t.waiting)).collect();
    assert_eq!(waiting, vec![(None, 2), (Some("gpu"), 1), (Some("video"), 1)]);
    let now = crate::now_ms();
    for t in &summary.activity_tags {
        assert!(t.oldest_visible_at_ms > 0 && t.oldest_visible_at_ms <= now, "{t:?}");
    }
    let d = p.describe_instance("t").await.unwrap().expect("described");
    let tags: Vec<(u64, Option<&str>)> =
        d.pending_activities.iter().map(|a| (a.event_id, a.tag.as_deref())).collect();
    assert_eq!(tags, vec![(2, Some("gpu")), (3, None), (4, Some("video")), (5, None), (6, Some("gpu"))]);
}
