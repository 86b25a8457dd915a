//! Reading an instance's durable values from outside: [`Client::get_value`],
//! [`Client::values`], [`Client::wait_for_value`] and their typed forms.
//!
//! They read the store's copy of the values (written in the same commit as the turn that
//! changed them), never the history: a read costs one indexed lookup however long the
//! instance has run. Writing values is the orchestration's job (`ctx.set_value`).

use super::{Client, ClientError, FinalState, OrchestrationStatus};
use crate::orchestration::ValueError;
use crate::provider::MAX_INSTANCE_ID_BYTES;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

impl Client {
    /// Checks a key the way every read does: not empty, no control characters. Its length
    /// is the runtime's limit to enforce on writes; a longer key is simply never found.
    fn check_value_key(key: &str) -> Result<(), ClientError> {
        let unlimited = crate::orchestration::ValueLimits { max_key_bytes: usize::MAX, ..Default::default() };
        crate::orchestration::values::check_key(key, &unlimited).map_err(ClientError::Value)
    }

    /// [`ClientError::NotFound`] unless the instance exists.
    async fn check_exists(&self, instance: &str) -> Result<(), ClientError> {
        match self.calls.get_instance(instance).await? {
            Some(_) => Ok(()),
            None => Err(ClientError::NotFound(instance.to_string())),
        }
    }

    /// The instance's value of `key` as its last committed turn left it (`None`: not set).
    /// Fails with [`ClientError::NotFound`] for an unknown instance.
    ///
    /// ```no_run
    /// # async fn demo(client: duroxide::Client) -> Result<(), duroxide::ClientError> {
    /// if let Some(stage) = client.get_value("order-42", "stage").await? {
    ///     println!("order-42 is at {stage}");
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "get_value", instance = %instance))]
    pub async fn get_value(&self, instance: &str, key: &str) -> Result<Option<String>, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        Self::check_value_key(key)?;
        let value = self.calls.get_value(instance, key).await?;
        if value.is_none() {
            self.check_exists(instance).await?;
        }
        Ok(value)
    }

    /// Every value of the instance, sorted by key. Fails with [`ClientError::NotFound`] for
    /// an unknown instance.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "values", instance = %instance))]
    pub async fn values(&self, instance: &str) -> Result<BTreeMap<String, String>, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        let values = self.calls.get_values(instance).await?;
        if values.is_empty() {
            self.check_exists(instance).await?;
        }
        Ok(values)
    }

    /// [`get_value`](Self::get_value), parsed as JSON of type `T` (as `ctx.set_typed`
    /// writes it); [`ValueError::Deserialize`] when it is not a `T`.
    pub async fn get_typed_value<T: DeserializeOwned>(
        &self,
        instance: &str,
        key: &str,
    ) -> Result<Option<T>, ClientError> {
        self.get_value(instance, key).await?.map(|v| parse(key, &v)).transpose()
    }

    /// Waits until the instance has set `key`, and returns its value. Returns at once when
    /// it is set already. Fails with [`ClientError::ValueTimeout`] after `timeout`,
    /// [`ClientError::NotFound`] for an unknown instance, and
    /// [`ClientError::InstanceFinished`] when the instance ends without having set it
    /// (nothing could set it any more).
    ///
    /// Values are read from the store, polling with a backoff from 5 ms up to 200 ms, so a
    /// value is seen at most about 200 ms after the turn that set it committed.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "wait_for_value", instance = %instance))]
    pub async fn wait_for_value(
        &self,
        instance: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<String, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        Self::check_value_key(key)?;
        let start = Instant::now();
        let mut poll = Duration::from_millis(5);
        loop {
            if let Some(v) = self.calls.get_value(instance, key).await? {
                return Ok(v);
            }
            let status = self.get_orchestration_status(instance).await?;
            if let OrchestrationStatus::NotFound = status {
                return Err(ClientError::NotFound(instance.to_string()));
            }
            if let Some(state) = FinalState::of(&status) {
                // The last turn may have set it just before ending: read once more.
                return match self.calls.get_value(instance, key).await? {
                    Some(v) => Ok(v),
                    None => Err(ClientError::InstanceFinished { instance: instance.to_string(), state }),
                };
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(ClientError::ValueTimeout {
                    instance: instance.to_string(),
                    key: key.to_string(),
                    waited,
                });
            }
            tokio::time::sleep(poll.min(timeout - waited)).await;
            poll = (poll * 2).min(Duration::from_millis(200));
        }
    }

    /// [`wait_for_value`](Self::wait_for_value), parsed as JSON of type `T`.
    pub async fn wait_for_typed_value<T: DeserializeOwned>(
        &self,
        instance: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let v = self.wait_for_value(instance, key, timeout).await?;
        parse(key, &v)
    }
}

fn parse<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, ClientError> {
    serde_json::from_str(json).map_err(|e| {
        ClientError::Value(ValueError::Deserialize { key: key.to_string(), message: e.to_string() })
    })
}
