//! Registries of activity and orchestration code, orchestration versions and version
//! policies.
//!
//! A runtime node runs only what its registries hold. Orchestrations are registered per
//! (name, semver version); a [`VersionPolicy`] picks the version for new instances, while
//! running instances stay pinned to the version they started with.

use crate::context::ActivityContext;
use crate::error::ActivityError;
use crate::replay::OrchestrationHandler;
use futures::future::BoxFuture;
use semver::{Version, VersionReq};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

/// Activity code the runtime can run.
pub trait ActivityHandler: Send + Sync + 'static {
    /// Runs one attempt.
    fn invoke(
        &self,
        ctx: ActivityContext,
        input: String,
    ) -> BoxFuture<'static, Result<String, ActivityError>>;
}

impl<F, Fut> ActivityHandler for F
where
    F: Fn(ActivityContext, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, ActivityError>> + Send + 'static,
{
    fn invoke(
        &self,
        ctx: ActivityContext,
        input: String,
    ) -> BoxFuture<'static, Result<String, ActivityError>> {
        Box::pin((self)(ctx, input))
    }
}

/// A registration mistake, reported by [`ActivityRegistryBuilder::try_build`] and
/// [`OrchestrationRegistryBuilder::try_build`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The same activity name was registered twice.
    #[error("activity '{name}' is registered twice (registrations #{first} and #{second})")]
    DuplicateActivity {
        /// Activity name.
        name: String,
        /// 1-based position of the first registration.
        first: usize,
        /// 1-based position of the second registration.
        second: usize,
    },
    /// The same orchestration (name, version) was registered twice.
    #[error(
        "orchestration '{name}' version {version} is registered twice (registrations #{first} and #{second})"
    )]
    DuplicateOrchestration {
        /// Orchestration name.
        name: String,
        /// Version.
        version: String,
        /// 1-based position of the first registration.
        first: usize,
        /// 1-based position of the second registration.
        second: usize,
    },
    /// A version string is not semver.
    #[error("orchestration '{name}': '{version}' is not a semantic version ({reason})")]
    InvalidVersion {
        /// Orchestration name.
        name: String,
        /// The string given.
        version: String,
        /// The parser's message.
        reason: String,
    },
    /// A version policy is malformed (bad version or requirement).
    #[error("version policy for '{name}': {reason}")]
    InvalidPolicy {
        /// Orchestration name, or `*` for the default policy.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// The activities a node can run, by name.
#[derive(Clone, Default)]
pub struct ActivityRegistry {
    handlers: HashMap<String, Arc<dyn ActivityHandler>>,
}

impl std::fmt::Debug for ActivityRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityRegistry").field("names", &self.names()).finish()
    }
}

impl ActivityRegistry {
    /// Starts a builder.
    ///
    /// ```
    /// use duroxide::{ActivityContext, ActivityRegistry};
    /// let activities = ActivityRegistry::builder()
    ///     .register("Greet", |_ctx: ActivityContext, name: String| async move {
    ///         Ok(format!("Hello, {name}!"))
    ///     })
    ///     .build();
    /// assert!(activities.get("Greet").is_some());
    /// ```
    pub fn builder() -> ActivityRegistryBuilder {
        ActivityRegistryBuilder::default()
    }

    /// The handler registered under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn ActivityHandler>> {
        self.handlers.get(name).cloned()
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.handlers.keys().cloned().collect();
        v.sort();
        v
    }

    /// This registry with `handler` under `name`, in place of what was registered there
    /// (the test kit's activity mocks).
    pub(crate) fn with_handler(mut self, name: &str, handler: Arc<dyn ActivityHandler>) -> Self {
        self.handlers.insert(name.to_string(), handler);
        self
    }
}

/// Builds an [`ActivityRegistry`].
#[derive(Default)]
pub struct ActivityRegistryBuilder {
    entries: Vec<(String, Arc<dyn ActivityHandler>)>,
}

impl ActivityRegistryBuilder {
    /// Registers an activity: an async function of `(ActivityContext, String)` returning
    /// `Result<String, ActivityError>`.
    pub fn register<F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(ActivityContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, ActivityError>> + Send + 'static,
    {
        self.entries.push((name.into(), Arc::new(f)));
        self
    }

    /// Registers an already type-erased handler.
    pub fn register_handler(mut self, name: impl Into<String>, handler: Arc<dyn ActivityHandler>) -> Self {
        self.entries.push((name.into(), handler));
        self
    }

    /// Builds the registry, or reports the first duplicate name.
    pub fn try_build(self) -> Result<ActivityRegistry, RegistryError> {
        let mut handlers = HashMap::new();
        let mut positions: HashMap<String, usize> = HashMap::new();
        for (i, (name, h)) in self.entries.into_iter().enumerate() {
            if let Some(first) = positions.insert(name.clone(), i + 1) {
                return Err(RegistryError::DuplicateActivity { name, first, second: i + 1 });
            }
            handlers.insert(name, h);
        }
        Ok(ActivityRegistry { handlers })
    }

    /// Builds the registry.
    ///
    /// # Panics
    /// On a registration mistake (a name registered twice), with the message of
    /// [`RegistryError`]. Use [`try_build`](Self::try_build) to handle it instead.
    pub fn build(self) -> ActivityRegistry {
        match self.try_build() {
            Ok(r) => r,
            Err(e) => panic!("invalid activity registry: {e}"),
        }
    }
}

/// Which version new instances of an orchestration get.
///
/// Written like an enum (`VersionPolicy::Latest`, `VersionPolicy::Exact("1.0.0")`,
/// `VersionPolicy::Compatible("^1.2")`) but the version strings may also be owned `String`s
/// computed at run time (from configuration, say), which an enum of `&'static str` could not
/// take.
///
/// ```
/// use duroxide::VersionPolicy;
/// let from_config = String::from("1.0.0");
/// assert_eq!(VersionPolicy::Exact(from_config), VersionPolicy::Exact("1.0.0"));
/// assert_ne!(VersionPolicy::Latest, VersionPolicy::Compatible("^1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionPolicy(PolicyKind);

/// The policy a [`VersionPolicy`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyKind {
    /// The highest registered version.
    Latest,
    /// Exactly this version.
    Exact(String),
    /// The highest registered version matching this semver requirement.
    Compatible(String),
}

// The associated items are named like enum variants so the policy reads like one at the
// call site (see the type's docs); that is the only reason for the lint exceptions.
#[allow(non_upper_case_globals, non_snake_case)]
impl VersionPolicy {
    /// The highest registered version (the default).
    pub const Latest: VersionPolicy = VersionPolicy(PolicyKind::Latest);

    /// Exactly `version`.
    pub fn Exact(version: impl Into<String>) -> VersionPolicy {
        VersionPolicy(PolicyKind::Exact(version.into()))
    }

    /// The highest registered version matching the semver requirement `req` (e.g. `"^1.2"`).
    pub fn Compatible(req: impl Into<String>) -> VersionPolicy {
        VersionPolicy(PolicyKind::Compatible(req.into()))
    }

    /// What this policy does.
    pub fn kind(&self) -> &PolicyKind {
        &self.0
    }

    fn validate(&self, name: &str) -> Result<(), RegistryError> {
        let bad = |reason: String| RegistryError::InvalidPolicy { name: name.to_string(), reason };
        match &self.0 {
            PolicyKind::Latest => Ok(()),
            PolicyKind::Exact(v) => Version::parse(v).map(|_| ()).map_err(|e| bad(format!("'{v}': {e}"))),
            PolicyKind::Compatible(r) => {
                VersionReq::parse(r).map(|_| ()).map_err(|e| bad(format!("'{r}': {e}")))
            }
        }
    }
}

impl Default for VersionPolicy {
    fn default() -> Self {
        VersionPolicy::Latest
    }
}

/// Why an orchestration could not be resolved to code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No version of the name is registered.
    #[error("orchestration '{0}' is not registered on this node")]
    UnknownName(String),
    /// The name is registered, but not at the requested version.
    #[error(
        "orchestration '{name}' version {version} is not registered on this node (registered: {registered})"
    )]
    UnknownVersion {
        /// Name.
        name: String,
        /// Version asked for.
        version: String,
        /// Versions this node has.
        registered: String,
    },
    /// The policy matches no registered version.
    #[error(
        "no registered version of orchestration '{name}' satisfies policy {policy} (registered: {registered})"
    )]
    NoMatch {
        /// Name.
        name: String,
        /// The policy.
        policy: String,
        /// Versions this node has.
        registered: String,
    },
}

/// The orchestrations a node can run, by name and version, with version policies.
#[derive(Clone, Default)]
pub struct OrchestrationRegistry {
    entries: HashMap<String, BTreeMap<Version, Arc<dyn OrchestrationHandler>>>,
    default_policy: VersionPolicy,
    policies: HashMap<String, VersionPolicy>,
}

impl std::fmt::Debug for OrchestrationRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestrationRegistry")
            .field("registered", &self.registered())
            .field("default_policy", &self.default_policy)
            .finish()
    }
}

impl OrchestrationRegistry {
    /// Starts a builder.
    ///
    /// ```
    /// use duroxide::{OrchestrationContext, OrchestrationRegistry, VersionPolicy};
    /// let orchestrations = OrchestrationRegistry::builder()
    ///     .register("Hello", |ctx: OrchestrationContext, name: String| async move {
    ///         Ok(ctx.schedule_activity("Greet", name).await?)
    ///     })
    ///     .with_version_policy(VersionPolicy::Latest)
    ///     .build();
    /// assert_eq!(orchestrations.resolve("Hello", None).unwrap().0, "1.0.0");
    /// ```
    pub fn builder() -> OrchestrationRegistryBuilder {
        OrchestrationRegistryBuilder {
            entries: Vec::new(),
            default_policy: VersionPolicy::Latest,
            policies: Vec::new(),
        }
    }

    /// Picks the code for `name`: `version` if given, else by the name's policy.
    /// Returns the version string and the handler.
    pub fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(String, Arc<dyn OrchestrationHandler>), ResolveError> {
        let versions = self.entries.get(name).ok_or_else(|| ResolveError::UnknownName(name.to_string()))?;
        let registered = || versions.keys().map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
        if let Some(v) = version {
            let parsed = Version::parse(v).ok();
            return parsed
                .and_then(|p| versions.get_key_value(&p))
                .map(|(k, h)| (k.to_string(), h.clone()))
                .ok_or_else(|| ResolveError::UnknownVersion {
                    name: name.to_string(),
                    version: v.to_string(),
                    registered: registered(),
                });
        }
        let policy = self.policies.get(name).unwrap_or(&self.default_policy);
        let found = match &policy.0 {
            PolicyKind::Latest => versions.iter().next_back(),
            PolicyKind::Exact(v) => Version::parse(v).ok().and_then(|p| versions.get_key_value(&p)),
            PolicyKind::Compatible(r) => {
                VersionReq::parse(r).ok().and_then(|req| versions.iter().rev().find(|(v, _)| req.matches(v)))
            }
        };
        found.map(|(k, h)| (k.to_string(), h.clone())).ok_or_else(|| ResolveError::NoMatch {
            name: name.to_string(),
            policy: format!("{:?}", policy.0),
            registered: registered(),
        })
    }

    /// Whether this exact (name, version) is registered.
    pub fn has(&self, name: &str, version: &str) -> bool {
        match (self.entries.get(name), Version::parse(version)) {
            (Some(vs), Ok(v)) => vs.contains_key(&v),
            _ => false,
        }
    }

    /// All registered (name, version) pairs, sorted.
    pub fn registered(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .entries
            .iter()
            .flat_map(|(n, vs)| vs.keys().map(move |v| (n.clone(), v.to_string())))
            .collect();
        v.sort();
        v
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.entries.keys().cloned().collect();
        v.sort();
        v
    }
}

/// Builds an [`OrchestrationRegistry`].
pub struct OrchestrationRegistryBuilder {
    entries: Vec<(String, String, Arc<dyn OrchestrationHandler>)>,
    default_policy: VersionPolicy,
    policies: Vec<(String, VersionPolicy)>,
}

impl OrchestrationRegistryBuilder {
    /// Registers an orchestration at version `1.0.0`.
    pub fn register<F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn(crate::OrchestrationContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, crate::OrchestrationError>> + Send + 'static,
    {
        self.register_versioned(name, "1.0.0", f)
    }

    /// Registers an orchestration at a semver version.
    pub fn register_versioned<F, Fut>(
        mut self,
        name: impl Into<String>,
        version: impl Into<String>,
        f: F,
    ) -> Self
    where
        F: Fn(crate::OrchestrationContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, crate::OrchestrationError>> + Send + 'static,
    {
        self.entries.push((name.into(), version.into(), Arc::new(f)));
        self
    }

    /// Registers an already type-erased handler.
    pub fn register_handler(
        mut self,
        name: impl Into<String>,
        version: impl Into<String>,
        handler: Arc<dyn OrchestrationHandler>,
    ) -> Self {
        self.entries.push((name.into(), version.into(), handler));
        self
    }

    /// The policy for names without their own (default: [`VersionPolicy::Latest`]).
    pub fn with_version_policy(mut self, policy: VersionPolicy) -> Self {
        self.default_policy = policy;
        self
    }

    /// The policy for one name, overriding the default.
    pub fn with_version_policy_for(mut self, name: impl Into<String>, policy: VersionPolicy) -> Self {
        self.policies.push((name.into(), policy));
        self
    }

    /// Builds the registry, or reports the first mistake: a (name, version) registered
    /// twice, a version that is not semver, or a malformed policy.
    pub fn try_build(self) -> Result<OrchestrationRegistry, RegistryError> {
        let mut entries: HashMap<String, BTreeMap<Version, Arc<dyn OrchestrationHandler>>> = HashMap::new();
        let mut positions: HashMap<(String, Version), usize> = HashMap::new();
        for (i, (name, version, h)) in self.entries.into_iter().enumerate() {
            let v = Version::parse(&version).map_err(|e| RegistryError::InvalidVersion {
                name: name.clone(),
                version: version.clone(),
                reason: e.to_string(),
            })?;
            if let Some(first) = positions.insert((name.clone(), v.clone()), i + 1) {
                return Err(RegistryError::DuplicateOrchestration { name, version, first, second: i + 1 });
            }
            entries.entry(name).or_default().insert(v, h);
        }
        self.default_policy.validate("*")?;
        let mut policies = HashMap::new();
        for (name, p) in self.policies {
            p.validate(&name)?;
            policies.insert(name, p);
        }
        Ok(OrchestrationRegistry { entries, default_policy: self.default_policy, policies })
    }

    /// Builds the registry.
    ///
    /// # Panics
    /// On a registration mistake, with the message of [`RegistryError`]. Use
    /// [`try_build`](Self::try_build) to handle it instead.
    pub fn build(self) -> OrchestrationRegistry {
        match self.try_build() {
            Ok(r) => r,
            Err(e) => panic!("invalid orchestration registry: {e}"),
        }
    }
}
