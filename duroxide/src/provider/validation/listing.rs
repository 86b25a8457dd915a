//! Conformance tests for the management reads: filtered listings with cursor pages, counts,
//! describe and history pages. Not here: deletes, pruning, termination and the summary
//! (`removal`).

use super::support::*;
use super::*;

/// An instance that ran one turn and ended in `state` (Completed or Failed), or is
/// `Running` after its first turn.
pub(super) async fn instance_in(p: &Arc<dyn Provider>, instance: &str, name: &str, state: InstanceState) {
    p.create_instance(instance, name, None, "in").await.expect("create_instance");
    let item = fetch_some(p, instance).await;
    let mut events = vec![started("in")];
    match state {
        InstanceState::Completed => {
            events.push(ev(2, EventKind::OrchestrationCompleted { output: "out".into() }))
        }
        InstanceState::Failed => {
            events.push(ev(2, EventKind::OrchestrationFailed { details: ErrorDetails::application("boom") }))
        }
        _ => {}
    }
    let mut c = turn(1, events, state);
    c.update.name = name.into();
    match state {
        InstanceState::Completed => c.update.output = Some("out".into()),
        InstanceState::Failed => c.update.error = Some(ErrorDetails::application("boom")),
        _ => {}
    }
    p.commit_turn(&item.lock_token, c).await.expect("commit");
}

/// Every instance, read through unfiltered pages.
async fn everything(p: &Arc<dyn Provider>) -> Vec<InstanceRecord> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = p
            .list_instances_page(
                &InstanceFilter::default(),
                &PageRequest { order: ListOrder::OldestFirst, limit: 1000, after: after.take() },
            )
            .await
            .expect("list_instances_page");
        out.extend(page.instances);
        match page.next_cursor {
            Some(c) => after = Some(InstanceCursor::parse(&c).expect("cursor the store returned")),
            None => return out,
        }
    }
}

/// Every id a listing returns, page by page with `limit` per page.
async fn paged_ids(
    p: &Arc<dyn Provider>,
    filter: &InstanceFilter,
    order: ListOrder,
    limit: u32,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let page = p
            .list_instances_page(filter, &PageRequest { order, limit, after: after.take() })
            .await
            .expect("list_instances_page");
        assert!(page.instances.len() <= limit as usize, "a page holds at most its limit");
        ids.extend(page.instances.into_iter().map(|r| r.instance));
        match page.next_cursor {
            Some(c) => after = Some(InstanceCursor::parse(&c).expect("cursor the store returned")),
            None => return ids,
        }
    }
    panic!("listing never ended");
}

/// Pages in both orders return every instance exactly once, ordered by creation time then
/// id, and the last page has no cursor.
pub async fn list_pages_cover_every_instance_once(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..23 {
        create(&p, &format!("page-{i:02}")).await;
    }
    let all = everything(&p).await;
    let mut expected: Vec<(u64, String)> =
        all.iter().map(|r| (r.created_at_ms, r.instance.clone())).collect();
    expected.sort();
    let oldest: Vec<String> = expected.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(oldest.len(), 23);
    assert_eq!(paged_ids(&p, &InstanceFilter::default(), ListOrder::OldestFirst, 5).await, oldest);
    let newest: Vec<String> = oldest.iter().rev().cloned().collect();
    assert_eq!(paged_ids(&p, &InstanceFilter::default(), ListOrder::NewestFirst, 7).await, newest);
    // A page exactly as long as what is left ends the listing.
    let exact = p
        .list_instances_page(
            &InstanceFilter::default(),
            &PageRequest { order: ListOrder::OldestFirst, limit: 23, after: None },
        )
        .await
        .unwrap();
    assert_eq!(exact.instances.len(), 23);
    assert_eq!(exact.next_cursor, None);
}

/// Instances created while a listing is paged never make it repeat or skip an instance:
/// oldest-first listings see them at the end, newest-first ones not at all.
pub async fn list_cursor_survives_concurrent_inserts(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..10 {
        create(&p, &format!("old-{i}")).await;
    }
    for order in [ListOrder::OldestFirst, ListOrder::NewestFirst] {
        let first = p
            .list_instances_page(&InstanceFilter::default(), &PageRequest { order, limit: 4, after: None })
            .await
            .unwrap();
        let mut seen: Vec<String> = first.instances.iter().map(|r| r.instance.clone()).collect();
        sleep_ms(3).await;
        let fresh = format!("new-{order:?}");
        create(&p, &fresh).await;
        let mut after = first.next_cursor.map(|c| InstanceCursor::parse(&c).unwrap());
        while let Some(a) = after.take() {
            let page = p
                .list_instances_page(
                    &InstanceFilter::default(),
                    &PageRequest { order, limit: 4, after: Some(a) },
                )
                .await
                .unwrap();
            seen.extend(page.instances.iter().map(|r| r.instance.clone()));
            after = page.next_cursor.map(|c| InstanceCursor::parse(&c).unwrap());
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{order:?}: no instance twice: {seen:?}");
        for i in 0..10 {
            assert!(seen.contains(&format!("old-{i}")), "{order:?}: old-{i} skipped: {seen:?}");
        }
        match order {
            ListOrder::OldestFirst => assert_eq!(seen.last(), Some(&fresh), "new instances come last"),
            ListOrder::NewestFirst => {
                assert!(!seen.contains(&fresh), "a newer instance is not behind the cursor")
            }
        }
    }
}

/// Each filter field, alone and combined, selects exactly the instances
/// [`InstanceFilter::matches`] accepts, in listing, count and per-state counts.
pub async fn list_filters_select_exactly_the_matches(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "parent").await;
    instance_in(&p, "ord-1", "Order", InstanceState::Completed).await;
    instance_in(&p, "ord-2", "Order", InstanceState::Failed).await;
    instance_in(&p, "ord-3", "Order", InstanceState::Running).await;
    sleep_ms(5).await;
    let middle = now();
    sleep_ms(5).await;
    instance_in(&p, "ship-2", "Ship", InstanceState::Completed).await;
    p.create_instance("ship-1", "Ship", Some("2.0.0"), "x").await.unwrap();
    create(&p, "x%1").await;
    create(&p, "x_1").await;
    create(&p, "xa1").await;
    p.enqueue_message(external("parent", "go", "")).await.unwrap();
    let parent = fetch_some_named(&p, "parent").await;
    let mut c = turn(1, Vec::new(), InstanceState::Running);
    c.messages.push(child_start("kid-1", Some(link("parent"))));
    c.messages.push(child_start("kid-2", Some(link("parent"))));
    p.commit_turn(&parent.lock_token, c).await.unwrap();

    let all_records = everything(&p).await;
    assert_eq!(all_records.len(), 11, "{:?}", all_records.iter().map(|r| &r.instance).collect::<Vec<_>>());
    let filters = vec![
        InstanceFilter::default(),
        InstanceFilter::default().state(InstanceState::Completed),
        InstanceFilter::default().state(InstanceState::Failed).state(InstanceState::Completed),
        InstanceFilter::default().state(InstanceState::Pending),
        InstanceFilter::default().name("Order"),
        InstanceFilter::default().name("Ship").version("2.0.0"),
        InstanceFilter::default().version(V1),
        InstanceFilter::default().parent("parent"),
        InstanceFilter::default().id_prefix("ord-"),
        InstanceFilter::default().id_prefix("x%"),
        InstanceFilter::default().id_prefix("x_"),
        InstanceFilter::default().id_prefix("x"),
        InstanceFilter::default().id_prefix("nobody"),
        InstanceFilter::default().created_after_ms(middle),
        InstanceFilter::default().created_before_ms(middle),
        InstanceFilter::default().updated_before_ms(middle),
        InstanceFilter::default().updated_after_ms(middle).state(InstanceState::Pending),
        InstanceFilter::default().name("Order").state(InstanceState::Running).created_before_ms(middle),
    ];
    for filter in filters {
        let mut expected: Vec<(u64, String)> = all_records
            .iter()
            .filter(|r| filter.matches(r))
            .map(|r| (r.created_at_ms, r.instance.clone()))
            .collect();
        expected.sort();
        let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
        let listed = paged_ids(&p, &filter, ListOrder::OldestFirst, 3).await;
        assert_eq!(listed, expected, "listing with {filter:?}");
        assert_eq!(p.count_instances(&filter).await.unwrap(), expected.len() as u64, "count with {filter:?}");
        let by_state = p.count_instances_by_state(&filter).await.unwrap();
        assert_eq!(by_state.iter().map(|c| c.count).sum::<u64>(), expected.len() as u64, "{filter:?}");
        assert!(by_state.iter().all(|c| c.count > 0), "states with none are left out: {by_state:?}");
        for c in &by_state {
            let n = all_records.iter().filter(|r| filter.matches(r) && r.state == c.state).count() as u64;
            assert_eq!(c.count, n, "{filter:?} in state {:?}", c.state);
        }
    }
    // Spot checks of the oracle itself.
    let prefix = paged_ids(&p, &InstanceFilter::default().id_prefix("x%"), ListOrder::OldestFirst, 10).await;
    assert_eq!(prefix, vec!["x%1".to_string()], "a prefix is literal, not a pattern");
    let kids = paged_ids(&p, &InstanceFilter::default().parent("parent"), ListOrder::OldestFirst, 10).await;
    assert_eq!(kids, vec!["kid-1".to_string(), "kid-2".to_string()]);
}

/// Like `fetch_some`, but skips (and releases) other instances' batches.
async fn fetch_some_named(p: &Arc<dyn Provider>, instance: &str) -> OrchestrationItem {
    let filter = only(&[(NAME, &[V1])]);
    for _ in 0..50 {
        match p.fetch_orchestration_item(LOCK, &filter).await.unwrap() {
            Some(item) if item.instance == instance => return item,
            Some(other) => {
                p.abandon_orchestration_item(
                    &other.lock_token,
                    Some(Duration::from_secs(60)),
                    None,
                    Attempt::GivenBack,
                )
                .await
                .unwrap();
            }
            None => break,
        }
    }
    panic!("no batch for '{instance}'");
}

/// `describe_instance` reports the record, executions, pending activities with who holds
/// them, timers, queued messages and children; an unknown id is `None`.
pub async fn describe_instance_reports_everything(f: Factory) {
    let p = f.create_provider().await;
    assert_eq!(p.describe_instance("nobody").await.unwrap(), None);
    with_activities(&p, "desc", &[2, 3]).await;
    let held = p.fetch_work_item(LOCK, &worker("worker-7")).await.unwrap().expect("work");
    assert_eq!(held.event_id, 2);
    let fire_at = now() + 3_600_000;
    p.enqueue_message(OutboundMessage {
        instance: "desc".into(),
        message: OrchestratorMessage::TimerFired { execution_id: 1, event_id: 4, fire_at_ms: fire_at },
        visible_at_ms: Some(fire_at),
    })
    .await
    .unwrap();
    p.enqueue_message(external("desc", "approval", "yes")).await.unwrap();
    let item = fetch_some(&p, "desc").await;
    let mut c = turn(
        1,
        vec![ev(4, EventKind::TimerCreated { delay_ms: 1, fire_at_ms: fire_at, call_site: None })],
        InstanceState::Running,
    );
    c.messages.push(child_start("desc-child", Some(link("desc"))));
    c.update.custom_status = Some(Some("waiting".into()));
    p.commit_turn(&item.lock_token, c).await.unwrap();
    p.enqueue_message(external("desc", "late", "1")).await.unwrap();

    let d = p.describe_instance("desc").await.unwrap().expect("described");
    assert_eq!(d.record.instance, "desc");
    assert_eq!(d.record.custom_status.as_deref(), Some("waiting"));
    assert_eq!(d.locked_until_ms, None, "nobody holds it");
    assert_eq!(d.executions.len(), 1);
    assert_eq!((d.executions[0].execution_id, d.executions[0].event_count), (1, 4));
    let e = &d.executions[0];
    assert!(e.started_at_ms > 0 && e.updated_at_ms >= e.started_at_ms, "{e:?}");
    assert_eq!(d.pending_activities.len(), 2, "{:?}", d.pending_activities);
    let a2 = &d.pending_activities[0];
    assert_eq!((a2.event_id, a2.name.as_str(), a2.attempts), (2, "Act", 1));
    assert_eq!(a2.locked_by.as_deref(), Some("worker-7"));
    assert!(a2.locked_until_ms.is_some_and(|t| t > now()));
    let a3 = &d.pending_activities[1];
    assert_eq!((a3.event_id, a3.attempts, a3.locked_by.as_deref(), a3.locked_until_ms), (3, 0, None, None));
    assert!(!a3.cancel_requested);
    assert_eq!(d.pending_timers, vec![PendingTimer { execution_id: 1, event_id: 4, fire_at_ms: fire_at }]);
    let kinds: Vec<&str> = d.queued_messages.iter().map(|m| m.message.type_name()).collect();
    assert_eq!(
        kinds,
        vec!["TimerFired", "ExternalRaised"],
        "the consumed event is gone, the late one queued"
    );
    assert!(d.queued_messages.iter().all(|m| !m.locked));
    assert_eq!(d.queued_messages[0].visible_at_ms, fire_at);
    assert_eq!(d.children.len(), 1);
    assert_eq!(
        (d.children[0].instance.as_str(), d.children[0].state),
        ("desc-child", InstanceState::Pending)
    );

    // While a turn holds the instance, the description says so.
    fetch_some_named(&p, "desc").await;
    let d = p.describe_instance("desc").await.unwrap().unwrap();
    assert!(d.locked_until_ms.is_some_and(|t| t > now()));
    assert!(d.queued_messages.iter().any(|m| m.locked));
}

/// `read_history_page` reads one execution a page at a time, after a given event id.
pub async fn history_pages_read_in_order(f: Factory) {
    let p = f.create_provider().await;
    let ids: Vec<u64> = (2..=10).collect();
    with_activities(&p, "hist", &ids).await;
    let mut seen = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    loop {
        let page = p.read_history_page("hist", None, after, 4).await.unwrap();
        assert_eq!(page.execution_id, 1);
        assert!(page.events.len() <= 4);
        pages += 1;
        seen.extend(page.events.iter().map(|e| e.event_id));
        match page.next_after_event_id {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(seen, (1..=10).collect::<Vec<u64>>());
    assert_eq!(pages, 3);
    let tail = p.read_history_page("hist", Some(1), 8, 100).await.unwrap();
    assert_eq!(tail.events.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![9, 10]);
    assert_eq!(tail.next_after_event_id, None);
    assert_eq!(p.read_history_page("hist", Some(1), 10, 5).await.unwrap().events, Vec::new());
    match p.read_history_page("nobody", None, 0, 5).await {
        Err(ProviderError::InstanceNotFound(id)) => assert_eq!(id, "nobody"),
        other => panic!("expected InstanceNotFound, got {other:?}"),
    }
    // An earlier execution by id.
    let item = continue_as_new(&p, "hist-can").await;
    p.commit_turn(&item.lock_token, turn(2, vec![started_v2("next")], InstanceState::Running)).await.unwrap();
    let first = p.read_history_page("hist-can", Some(1), 0, 10).await.unwrap();
    assert_eq!(first.events.len(), 2);
    let current = p.read_history_page("hist-can", None, 0, 10).await.unwrap();
    assert_eq!((current.execution_id, current.events.len()), (2, 1));
}
