//! Activity routing by tag: [`TagFilter`], which activities a runtime's workers take, and
//! the SQL condition both SQL stores fetch with. Which tag an activity carries is decided
//! by the orchestration (`ActivityFuture::with_tag`, `#[activity(tag = ..)]`); what a
//! runtime serves is its `RuntimeOptions::activity_tags`.

use std::collections::BTreeSet;

/// Which activities a runtime's workers take, by tag.
///
/// ```
/// use duroxide::provider::TagFilter;
/// let gpu = TagFilter::tags(["gpu"]);
/// assert!(gpu.accepts(Some("gpu")));
/// assert!(!gpu.accepts(None));
/// assert!(TagFilter::default().accepts(None));
/// assert!(!TagFilter::default().accepts(Some("gpu")));
/// assert!(TagFilter::untagged_and(["gpu"]).accepts(None));
/// assert!(!TagFilter::None.accepts(None));
/// ```
///
/// It serializes as `{"kind": "tags", "tags": ["gpu"]}` (`kind` one of `none`,
/// `untagged`, `tags`, `untagged_and`, `any`; `tags` only with the two that list tags):
/// the form runtimes record in their presence records (see [`WorkerRecord`]) and the CLI
/// prints with `--json`.
///
/// [`WorkerRecord`]: crate::provider::WorkerRecord
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "tags", rename_all = "snake_case")]
pub enum TagFilter {
    /// No activities at all: an orchestration-only node.
    None,
    /// Only untagged activities (the default, and what every runtime did before tags).
    #[default]
    Untagged,
    /// Only activities carrying one of these tags (a specialised pool, say GPUs).
    Tags(BTreeSet<String>),
    /// Untagged activities and those carrying one of these tags.
    UntaggedAnd(BTreeSet<String>),
    /// Every activity, tagged or not.
    Any,
}

impl TagFilter {
    /// Only activities carrying one of `tags`.
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(tags: I) -> Self {
        TagFilter::Tags(tags.into_iter().map(Into::into).collect())
    }

    /// Untagged activities and those carrying one of `tags`.
    pub fn untagged_and<I: IntoIterator<Item = S>, S: Into<String>>(tags: I) -> Self {
        TagFilter::UntaggedAnd(tags.into_iter().map(Into::into).collect())
    }

    /// Whether a runtime with this filter takes an activity tagged `tag` (`None`: untagged).
    pub fn accepts(&self, tag: Option<&str>) -> bool {
        match (self, tag) {
            (TagFilter::None, _) => false,
            (TagFilter::Any, _) => true,
            (TagFilter::Untagged | TagFilter::UntaggedAnd(_), None) => true,
            (TagFilter::Untagged, Some(_)) => false,
            (TagFilter::Tags(tags) | TagFilter::UntaggedAnd(tags), Some(t)) => tags.contains(t),
            (TagFilter::Tags(_), None) => false,
        }
    }

    /// True when no activity passes (`None`, or an empty tag list): a store need not look.
    pub fn takes_nothing(&self) -> bool {
        matches!(self, TagFilter::None) || matches!(self, TagFilter::Tags(t) if t.is_empty())
    }

    /// The tags listed by name (empty for `None`, `Untagged` and `Any`).
    pub fn listed(&self) -> Vec<String> {
        match self {
            TagFilter::Tags(t) | TagFilter::UntaggedAnd(t) => t.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// A short description for logs and status notes: `untagged`, `gpu, video`,
    /// `untagged + gpu`, `any`, `none`.
    pub fn describe(&self) -> String {
        match self {
            TagFilter::None => "none".into(),
            TagFilter::Untagged => "untagged".into(),
            TagFilter::Any => "any".into(),
            TagFilter::Tags(t) => t.iter().cloned().collect::<Vec<_>>().join(", "),
            TagFilter::UntaggedAnd(t) => {
                format!("untagged + {}", t.iter().cloned().collect::<Vec<_>>().join(", "))
            }
        }
    }

    /// The condition over `worker_queue` alias `w` that selects the work this filter
    /// takes; `list` is the placeholder of the bound tag list (see
    /// [`needs_list`](Self::needs_list)), written as `IN` over it by `in_list`. Each form
    /// keeps the `tag` column first, so the `(tag, visible_at, id)` index serves it.
    pub(crate) fn sql_condition(&self, in_list: impl Fn(&str) -> String, list: &str) -> String {
        match self {
            TagFilter::None => "1 = 0".into(),
            TagFilter::Untagged => "w.tag IS NULL".into(),
            TagFilter::Any => "1 = 1".into(),
            TagFilter::Tags(_) => format!("w.tag {}", in_list(list)),
            TagFilter::UntaggedAnd(_) => format!("(w.tag IS NULL OR w.tag {})", in_list(list)),
        }
    }

    /// Whether [`sql_condition`](Self::sql_condition) refers to the bound tag list.
    pub(crate) fn needs_list(&self) -> bool {
        matches!(self, TagFilter::Tags(_) | TagFilter::UntaggedAnd(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_filter_takes_what_it_names() {
        let cases: [(TagFilter, [bool; 3]); 5] = [
            (TagFilter::None, [false, false, false]),
            (TagFilter::Untagged, [true, false, false]),
            (TagFilter::tags(["gpu"]), [false, true, false]),
            (TagFilter::untagged_and(["gpu"]), [true, true, false]),
            (TagFilter::Any, [true, true, true]),
        ];
        for (filter, [untagged, gpu, other]) in cases {
            assert_eq!(filter.accepts(None), untagged, "{filter:?} untagged");
            assert_eq!(filter.accepts(Some("gpu")), gpu, "{filter:?} gpu");
            assert_eq!(filter.accepts(Some("video")), other, "{filter:?} video");
        }
        assert!(TagFilter::tags(Vec::<String>::new()).takes_nothing());
        assert_eq!(TagFilter::untagged_and(["b", "a"]).describe(), "untagged + a, b");
    }

    #[test]
    fn filters_read_back_exactly_from_json() {
        let cases = [
            (TagFilter::None, r#"{"kind":"none"}"#),
            (TagFilter::Untagged, r#"{"kind":"untagged"}"#),
            (TagFilter::tags(["video", "gpu"]), r#"{"kind":"tags","tags":["gpu","video"]}"#),
            (TagFilter::untagged_and(["gpu"]), r#"{"kind":"untagged_and","tags":["gpu"]}"#),
            (TagFilter::Any, r#"{"kind":"any"}"#),
        ];
        for (filter, json) in cases {
            assert_eq!(serde_json::to_string(&filter).unwrap(), json);
            assert_eq!(serde_json::from_str::<TagFilter>(json).unwrap(), filter);
        }
    }
}
