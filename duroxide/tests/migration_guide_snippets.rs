//! Every code snippet of the user's migration guide (`shared/seed/migration-guide.md`),
//! compiled against the real API and run. Where a snippet leaves a placeholder (an
//! undefined helper, a "save it somewhere" comment), the smallest definition is supplied
//! next to it and marked `// supplied:`.

mod common;

use duroxide::compat::{HistoryStoreExt, InMemoryHistoryStore};
use duroxide::{
    ActivityContext, ActivityError, ActivityRegistry, Client, OrchestrationContext, OrchestrationRegistry,
    OrchestrationStatus, Runtime, RuntimeOptions, SemverRange, SqliteProvider, VersionPolicy,
};
use std::sync::Arc;
use std::time::Duration;

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        // "New (0.2.0) - Explicit error type", in valid Rust (an async block cannot name its
        // return type; the annotation moves onto the value).
        .register("ProcessV1", |_ctx: ActivityContext, input: String| async move {
            let result = format!("v1:{input}");
            Ok::<String, ActivityError>(result)
        })
        .register(
            "ProcessV2",
            |_ctx: ActivityContext, input: String| async move { Ok(format!("v2:{input}")) },
        )
        .register(
            "Validate",
            |_ctx: ActivityContext, input: String| async move { Ok(format!("ok({input})")) },
        )
        .build()
}

// The guide's snippet verbatim ends with `let orchestrations = ...; ` and returning it.
#[allow(clippy::let_and_return)]
fn versioning_strategy(policy: VersionPolicy) -> OrchestrationRegistry {
    // Version 1.0.0
    let orchestration_v1 = |ctx: OrchestrationContext, input: String| async move {
        let result = ctx.schedule_activity("ProcessV1", input).await?;
        Ok(result)
    };

    // Version 2.0.0 - Added validation step
    let orchestration_v2 = |ctx: OrchestrationContext, input: String| async move {
        // New validation step
        let validated = ctx.schedule_activity("Validate", &input).await?;
        let result = ctx.schedule_activity("ProcessV2", validated).await?;
        Ok(result)
    };

    // Register both versions
    let orchestrations = OrchestrationRegistry::builder()
        .register_versioned("MyOrchestration", "1.0.0", orchestration_v1)
        .register_versioned("MyOrchestration", "2.0.0", orchestration_v2)
        .with_version_policy(policy) // New instances use latest
        .build();
    orchestrations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_strategy_and_rollback_snippets() {
    let ts = common::memory_store().await;
    let store = ts.store.clone();
    let rt =
        Runtime::start_with_store(store.clone(), activities(), versioning_strategy(VersionPolicy::Latest))
            .await;
    let client = Client::new(store.clone());
    client.start_orchestration("a", "MyOrchestration", "x").await.unwrap();
    assert_eq!(common::completed(&client, "a").await, "v2:ok(x)");
    rt.shutdown(None).await;

    // Emergency rollback configuration
    let rt = Runtime::start_with_store(
        store.clone(),
        activities(),
        versioning_strategy(VersionPolicy::Exact("1.0.0")),
    )
    .await;
    client.start_orchestration("b", "MyOrchestration", "y").await.unwrap();
    assert_eq!(common::completed(&client, "b").await, "v1:y");
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_as_new_versioned_snippet() {
    let orchestrations = OrchestrationRegistry::builder()
        .register_versioned("Eternal", "1.0.0", |ctx: OrchestrationContext, input: String| async move {
            let new_input = format!("{input}+");
            // Migrate running instance to new version via ContinueAsNew
            ctx.continue_as_new_versioned("2.0.0", new_input);
            Ok(String::new())
        })
        .register_versioned("Eternal", "2.0.0", |_ctx: OrchestrationContext, input: String| async move {
            Ok(format!("{input} on 2.0.0"))
        })
        .build();
    let ts = common::memory_store().await;
    let rt = Runtime::start_with_store(ts.store.clone(), activities(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration_versioned("e", "Eternal", "1.0.0", "x").await.unwrap();
    assert_eq!(common::completed(&client, "e").await, "x+ on 2.0.0");
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guid_and_runtime_creation_snippets() {
    let orchestrations = OrchestrationRegistry::builder()
        .register("Guid", |ctx: OrchestrationContext, _input: String| async move {
            let id = ctx.system_new_guid().await; // Async system activity
            Ok(id)
        })
        .build();
    let store = common::memory_store().await.store;
    // New (0.2.0) - Explicit store
    let rt = Runtime::start_with_store(store.clone(), activities(), orchestrations).await;
    let client = Client::new(store);
    client.start_orchestration("g", "Guid", "").await.unwrap();
    assert_eq!(common::completed(&client, "g").await.len(), 36);
    rt.shutdown(None).await;
}

#[test]
fn draining_options_snippet() {
    let options = RuntimeOptions {
        supported_replay_versions: Some(SemverRange::new(
            semver::Version::new(0, 0, 0),
            semver::Version::new(99, 0, 0),
        )),
        max_attempts: 5,
        ..Default::default()
    };
    assert!(options.supported_replay_versions.unwrap().contains(&semver::Version::new(42, 1, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_provider_migration_snippet() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let data_db = format!("sqlite:{}", dir.path().join("data.db").display());
    let orchestrations = || {
        OrchestrationRegistry::builder()
            .register("Waits", |ctx: OrchestrationContext, input: String| async move {
                let a = ctx.schedule_activity("ProcessV1", &input).await?;
                ctx.schedule_timer(Duration::from_millis(300)).await;
                Ok(format!("{a} after timer"))
            })
            .build()
    };

    // supplied: the old store holds a finished instance and one waiting on a timer.
    let old_store = InMemoryHistoryStore::new();
    {
        let p = old_store.provider().await?;
        let rt = Runtime::start_with_store(p.clone(), activities(), orchestrations()).await;
        let c = Client::new(p.clone());
        c.start_orchestration("done", "Waits", "1").await?;
        c.wait_for_orchestration("done", Duration::from_secs(10)).await?;
        c.start_orchestration("waiting", "Waits", "2").await?;
        while c.read_execution_history("waiting", None).await?.len() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        rt.shutdown(None).await;
    }
    let (activities, orchestrations) = (activities(), orchestrations());
    let mut saved_data = Vec::new(); // supplied

    // 1. Export from old provider
    let instances = old_store.list_instances().await;

    for instance in instances {
        let history = old_store.read(&instance).await;
        // Save history to new provider
        saved_data.push((instance, history)); // supplied
    }

    // 2. Import to new provider
    let new_store = SqliteProvider::new(&data_db, None).await?;
    for (instance, history) in saved_data {
        // Recreate instance in new store
        new_store.create_instance(&instance).await?;
        new_store.append(&instance, history).await?;
    }

    // 3. Switch runtime to new provider
    let rt = Runtime::start_with_store(Arc::new(new_store), activities, orchestrations).await;

    let client = Client::new(rt.store());
    assert_eq!(
        client.get_orchestration_status("done").await?,
        OrchestrationStatus::Completed { output: "v1:1 after timer".into() }
    );
    assert_eq!(common::completed(&client, "waiting").await, "v1:2 after timer");
    assert!(matches!(
        duroxide::compat::HistoryStoreExt::create_instance(client.store().as_ref(), "done").await,
        Err(duroxide::ProviderError::InstanceExists(_))
    ));
    rt.shutdown(None).await;
    Ok(())
}
