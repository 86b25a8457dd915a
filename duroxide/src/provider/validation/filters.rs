//! Conformance tests for fetch filters: which instances a node may run by name, version and
//! duroxide version, reporting the ones it may not, and counting instances per version.
//! Not here: lock behaviour (`locks`).

use super::support::*;
use super::*;

// Filters

/// Only listed orchestration names are fetched.
pub async fn filter_by_name(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("b", "B", None, "").await.unwrap();
    assert!(fetch_filtered(&p, &only(&[("A", &[])])).await.is_none());
    let item = fetch_filtered(&p, &only(&[("A", &[]), ("B", &[])])).await.expect("B allowed");
    assert_eq!(item.instance, "b");
}

/// An older instance the filter rejects does not hide a newer one it allows.
pub async fn filtered_out_instance_does_not_block_others(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..70 {
        p.create_instance(&format!("b{i}"), "B", None, "").await.unwrap();
    }
    p.create_instance("a", "A", None, "").await.unwrap();
    let item = fetch_filtered(&p, &only(&[("A", &[])])).await.expect("A is behind 70 B instances");
    assert_eq!(item.instance, "a");
}

/// A pinned version must be listed for its name.
pub async fn filter_by_pinned_version(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("pv", "A", Some("1.0.0"), "").await.unwrap();
    assert!(fetch_filtered(&p, &only(&[("A", &["2.0.0"])])).await.is_none());
    assert!(fetch_filtered(&p, &only(&[("B", &["1.0.0"]), ("A", &["2.0.0"])])).await.is_none());
    let item = fetch_filtered(&p, &only(&[("A", &["2.0.0", "1.0.0"])])).await.expect("1.0.0 listed");
    assert_eq!(item.instance, "pv");
}

/// An instance with no pinned version runs on any node that has its name.
pub async fn unpinned_instance_passes_version_lists(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("up", "A", None, "").await.unwrap();
    assert!(fetch_filtered(&p, &only(&[("A", &[])])).await.is_some());
    p.create_instance("up2", "A", None, "").await.unwrap();
    assert!(fetch_filtered(&p, &only(&[("A", &["9.9.9"])])).await.is_some());
}

/// An empty name list fetches nothing.
pub async fn empty_filter_list_fetches_nothing(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "e").await;
    assert!(fetch_filtered(&p, &only(&[])).await.is_none());
    fetch_some(&p, "e").await;
}

/// Instances written by a duroxide version outside the range are not fetched.
pub async fn filter_by_duroxide_version_range(f: Factory) {
    let p = f.create_provider().await;
    started_instance(&p, "dv").await;
    p.enqueue_message(external("dv", "e", "")).await.unwrap();
    let cur = semver::Version::parse(DUROXIDE_VERSION).unwrap();
    let above = FetchFilter {
        orchestrations: None,
        duroxide_versions: Some(SemverRange::new(
            semver::Version::new(cur.major + 1, 0, 0),
            semver::Version::new(cur.major + 2, 0, 0),
        )),
    };
    assert!(fetch_filtered(&p, &above).await.is_none());
    let around = FetchFilter {
        orchestrations: None,
        duroxide_versions: Some(SemverRange::new(semver::Version::new(0, 0, 0), cur)),
    };
    assert_eq!(fetch_filtered(&p, &around).await.expect("inside the range").instance, "dv");
}

/// A never-run instance (no duroxide version yet) passes any range.
pub async fn instance_without_duroxide_version_passes_range(f: Factory) {
    let p = f.create_provider().await;
    create(&p, "new").await;
    let filter = FetchFilter {
        orchestrations: None,
        duroxide_versions: Some(SemverRange::new(
            semver::Version::new(50, 0, 0),
            semver::Version::new(60, 0, 0),
        )),
    };
    assert!(fetch_filtered(&p, &filter).await.is_some());
}

/// `list_blocked_instances` names the instances a filter keeps from running.
pub async fn list_blocked_instances_reports_filtered(f: Factory) {
    let p = f.create_provider().await;
    p.create_instance("runs", "A", None, "").await.unwrap();
    p.create_instance("blocked", "B", Some("2.0.0"), "").await.unwrap();
    let filter = only(&[("A", &[])]);
    let blocked = p.list_blocked_instances(&filter, 10).await.unwrap();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].instance, "blocked");
    assert_eq!(blocked[0].name, "B");
    assert_eq!(blocked[0].version.as_deref(), Some("2.0.0"));
    assert!(p.list_blocked_instances(&all(), 10).await.unwrap().is_empty());
}

/// `list_blocked_instances` returns at most `limit` entries.
pub async fn list_blocked_instances_respects_limit(f: Factory) {
    let p = f.create_provider().await;
    for i in 0..5 {
        p.create_instance(&format!("b{i}"), "B", None, "").await.unwrap();
    }
    assert_eq!(p.list_blocked_instances(&only(&[("A", &[])]), 3).await.unwrap().len(), 3);
}

/// `count_instances_by_version` groups by name, version and state;
/// `count_live_instances_by_version` leaves finished instances out.
pub async fn count_instances_by_version_groups(f: Factory) {
    let p = f.create_provider().await;
    super::listing::instance_in(&p, "done", NAME, InstanceState::Completed).await;
    super::listing::instance_in(&p, "gone", "Other", InstanceState::Failed).await;
    let live = p.count_live_instances_by_version().await.unwrap();
    assert!(live.is_empty(), "{live:?}");
    started_instance(&p, "r1").await;
    started_instance(&p, "r2").await;
    p.create_instance("p1", "Other", None, "").await.unwrap();
    let counts = p.count_instances_by_version().await.unwrap();
    let find = |name: &str, version: Option<&str>, state: InstanceState| {
        counts
            .iter()
            .find(|c| c.name == name && c.version.as_deref() == version && c.state == state)
            .map(|c| c.count)
    };
    assert_eq!(find(NAME, Some(V1), InstanceState::Running), Some(2), "{counts:?}");
    assert_eq!(find("Other", None, InstanceState::Pending), Some(1), "{counts:?}");
    assert_eq!(find(NAME, Some(V1), InstanceState::Completed), Some(1), "{counts:?}");
    assert_eq!(find("Other", Some(V1), InstanceState::Failed), Some(1), "{counts:?}");
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert_eq!(counts[0].name, NAME, "sorted by name: {counts:?}");
    // The live counts: the same order, without the finished instances.
    let live = p.count_live_instances_by_version().await.unwrap();
    let unfinished: Vec<_> = counts.iter().filter(|c| !c.state.is_terminal()).cloned().collect();
    assert_eq!(live, unfinished);
    assert_eq!(live.len(), 2, "{live:?}");
}
