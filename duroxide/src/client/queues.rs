//! Event queues and typed events from the client's side: [`Client::enqueue_event`],
//! [`Client::enqueue_event_typed`] and [`Client::raise_event_typed`]. The orchestration
//! side is `OrchestrationContext::dequeue_event`; the semantics are in
//! `docs/event-queues.md`.

use super::{Client, ClientError};
use crate::provider::{MAX_EVENT_NAME_BYTES, MAX_INSTANCE_ID_BYTES, OrchestratorMessage, OutboundMessage};
use serde::Serialize;
use std::any::type_name;

fn encode<T: Serialize>(what: impl FnOnce() -> String, value: &T) -> Result<String, ClientError> {
    serde_json::to_string(value).map_err(|e| ClientError::Encode {
        what: what(),
        type_name: type_name::<T>(),
        message: e.to_string(),
    })
}

impl Client {
    /// Appends a message to event queue `queue` of an instance. The orchestration receives
    /// the queue's messages in the order they were enqueued, one per
    /// `ctx.dequeue_event(queue)`. Messages it has not received when it continues as new are
    /// carried into the next execution; messages sent while it is between executions wait
    /// for the next one.
    ///
    /// Fails with [`ClientError::NotFound`] for an unknown instance and
    /// [`ClientError::InstanceFinished`] for one that has finished (nothing would ever read
    /// the message). An instance that finishes while the message is being sent drops it.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "enqueue_event", instance = %instance))]
    pub async fn enqueue_event(
        &self,
        instance: &str,
        queue: &str,
        data: impl Into<String>,
    ) -> Result<(), ClientError> {
        let data = data.into();
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        Self::check_id("queue name", queue, MAX_EVENT_NAME_BYTES)?;
        self.check_payload(format!("message for queue '{queue}' of instance '{instance}'"), &data)?;
        self.check_live(instance).await?;
        self.calls
            .enqueue_message(OutboundMessage {
                instance: instance.to_string(),
                message: OrchestratorMessage::QueueMessage { queue: queue.to_string(), data },
                visible_at_ms: None,
            })
            .await?;
        Ok(())
    }

    /// [`enqueue_event`](Self::enqueue_event) with the message encoded as JSON; the
    /// orchestration reads it with `ctx.dequeue_event_typed::<T>(queue)`.
    pub async fn enqueue_event_typed<T: Serialize>(
        &self,
        instance: &str,
        queue: &str,
        message: &T,
    ) -> Result<(), ClientError> {
        let data = encode(|| format!("message for queue '{queue}' of instance '{instance}'"), message)?;
        self.enqueue_event(instance, queue, data).await
    }

    /// [`raise_event`](Self::raise_event) with the payload encoded as JSON; the
    /// orchestration reads it with `ctx.schedule_wait_typed::<T>(name)`.
    pub async fn raise_event_typed<T: Serialize>(
        &self,
        instance: &str,
        name: &str,
        payload: &T,
    ) -> Result<(), ClientError> {
        let data = encode(|| format!("event '{name}' for instance '{instance}'"), payload)?;
        self.raise_event(instance, name, data).await
    }
}
