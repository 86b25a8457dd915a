//! Conformance tests for concurrent callers: racing fetches, creates, completions and
//! commits never double-take or lose work, and complete-and-lock never takes an instance
//! someone holds. Not here: single-caller lock rules (`locks`).

use super::support::*;
use super::*;

// Concurrency

/// Of many concurrent fetches, exactly one gets the instance.
pub async fn concurrent_fetches_lock_instance_once(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "race").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.fetch_orchestration_item(LOCK, &FetchFilter::default()).await })
        })
        .collect();
    let mut got = 0;
    for t in tasks {
        if t.await.unwrap().expect("fetch").is_some() {
            got += 1;
        }
    }
    assert_eq!(got, 1, "exactly one fetch may lock the instance");
}

/// Concurrent dispatchers take every instance exactly once.
pub async fn concurrent_fetches_take_each_instance_once(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..30 {
        create(&p, &format!("i{i:02}")).await;
    }
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(item) =
                    p.fetch_orchestration_item(LOCK, &FetchFilter::default()).await.unwrap()
                {
                    mine.push(item.instance);
                }
                mine
            })
        })
        .collect();
    let mut all_ids = Vec::new();
    for t in tasks {
        all_ids.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all_ids.iter().cloned().collect();
    assert_eq!(all_ids.len(), 30, "each instance fetched once: {all_ids:?}");
    assert_eq!(unique.len(), 30);
}

/// Concurrent workers take every activity exactly once.
pub async fn concurrent_work_fetches_take_each_item_once(f: Factory) {
    let p = f.create_provider().await;
    let ids: Vec<u64> = (2..42).collect();
    with_activities(&p, "many", &ids).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(w) = p.fetch_work_item(LOCK, &worker("w-default")).await.unwrap() {
                    p.complete_work_item(&w.lock_token, completion("many", w.event_id, "r")).await.unwrap();
                    mine.push(w.event_id);
                }
                mine
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap());
    }
    got.sort();
    assert_eq!(got, ids);
    let item = fetch_some(&p, "many").await;
    assert_eq!(item.messages.len(), 40);
}

/// Commits on different instances run concurrently without interfering.
pub async fn concurrent_commits_on_different_instances(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..10 {
        create(&p, &format!("c{i}")).await;
    }
    let mut items = Vec::new();
    while let Some(item) = fetch(&p).await {
        items.push(item);
    }
    assert_eq!(items.len(), 10);
    let tasks: Vec<_> = items
        .into_iter()
        .map(|item| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut c =
                    turn(1, vec![started(&item.instance), scheduled(2, "A", "x")], InstanceState::Running);
                c.activities.push(work(&item.instance, 1, 2, "A", "x"));
                p.commit_turn(&item.lock_token, c).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("commit");
    }
    for i in 0..10 {
        assert_eq!(p.read_history(&format!("c{i}"), None).await.unwrap().len(), 2);
    }
    let mut n = 0;
    while fetch_work(&p, LOCK).await.is_some() {
        n += 1;
    }
    assert_eq!(n, 10);
}

/// Turns committed at the same moment (a store may commit them together) succeed or fail
/// each on their own: a stale lock fails only its turn.
pub async fn concurrent_commits_fail_alone(f: Factory) {
    let p = f.create_provider().await;
    let ids: Vec<String> = (0..8).map(|i| format!("cc{i}")).collect();
    let mut tokens = Vec::new();
    for id in &ids {
        create(&p, id).await;
        tokens.push(fetch_some(&p, id).await.lock_token);
    }
    tokens[3] = "stale-token".into();
    let commits = tokens.iter().map(|t| {
        let p = p.clone();
        let t = t.clone();
        async move { p.commit_turn(&t, turn(1, vec![started("input")], InstanceState::Running)).await }
    });
    let results = futures::future::join_all(commits).await;
    for (i, r) in results.into_iter().enumerate() {
        if i == 3 {
            assert_lock_lost(r, "stale token among concurrent commits");
        } else {
            r.unwrap_or_else(|e| panic!("commit {i} failed: {e}"));
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let len = p.read_history(id, None).await.unwrap().len();
        assert_eq!(len, usize::from(i != 3), "history of {id}");
    }
}

/// Instances created at the same moment succeed or fail each on their own.
pub async fn concurrent_creates_fail_alone(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "dup").await;
    let names = ["n0", "n1", "dup", "n2", "n3"];
    let creates = names.iter().map(|id| {
        let p = p.clone();
        async move { p.create_instance(id, NAME, None, "input").await }
    });
    let results = futures::future::join_all(creates).await;
    for (id, r) in names.iter().zip(results) {
        match (*id, r) {
            ("dup", Err(ProviderError::InstanceExists(i))) => assert_eq!(i, "dup"),
            ("dup", other) => panic!("duplicate create must fail with InstanceExists, got {other:?}"),
            (id, r) => r.unwrap_or_else(|e| panic!("create {id} failed: {e}")),
        }
    }
    let mut listed = p.list_instances().await.unwrap();
    listed.sort();
    assert_eq!(listed, vec!["dup", "n0", "n1", "n2", "n3"]);
}

/// Completing work and locking its instance in one call returns the instance as a fetch
/// would, with the completion among its messages; a store that does not lock returns none
/// and the instance stays fetchable.
pub async fn complete_and_lock_returns_the_instance(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "cl", &[2, 3]).await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    let known = |_: &str| None;
    let filter = all();
    let lock = LockAfterComplete { max_instances: 1, lock_timeout: LOCK, filter: &filter, cached: &known };
    let (results, items) = p
        .complete_work_items_and_lock(vec![(w.lock_token.clone(), completion("cl", w.event_id, "r"))], lock)
        .await;
    assert_eq!(results.len(), 1);
    results.into_iter().for_each(|r| r.expect("completed"));
    let item = match items.len() {
        0 => fetch_some(&p, "cl").await, // the store does not lock on completion
        1 => {
            fetch_none(&p).await; // locked for the caller
            items.into_iter().next().unwrap()
        }
        n => panic!("locked {n} instances for one completion"),
    };
    assert_eq!(item.instance, "cl");
    assert_eq!(item.history_len as usize, p.read_history("cl", None).await.unwrap().len());
    assert_eq!(
        item.messages,
        vec![OrchestratorMessage::ActivityCompleted {
            execution_id: 1,
            event_id: w.event_id,
            result: "r".into()
        }]
    );
    p.commit_turn(&item.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
}

/// An instance another node holds is not locked by a completion; its lock still counts.
pub async fn complete_and_lock_skips_held_instances(f: Factory) {
    let p = f.create_provider().await;
    with_activities(&p, "ch", &[2]).await;
    p.enqueue_message(external("ch", "e", "")).await.unwrap();
    let held = fetch_some(&p, "ch").await;
    let w = fetch_work(&p, LOCK).await.unwrap();
    let known = |_: &str| None;
    let filter = all();
    let lock = LockAfterComplete { max_instances: 4, lock_timeout: LOCK, filter: &filter, cached: &known };
    let (results, items) =
        p.complete_work_items_and_lock(vec![(w.lock_token.clone(), completion("ch", 2, "r"))], lock).await;
    results.into_iter().for_each(|r| r.expect("completed"));
    assert!(items.is_empty(), "a held instance must not be locked again");
    p.commit_turn(&held.lock_token, turn(1, Vec::new(), InstanceState::Running)).await.unwrap();
    let next = fetch_some(&p, "ch").await;
    assert_eq!(
        next.messages,
        vec![OrchestratorMessage::ActivityCompleted { execution_id: 1, event_id: 2, result: "r".into() }]
    );
}
