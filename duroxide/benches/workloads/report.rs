//! How figures are printed: a human line and a `JSON {...}` line per workload, one
//! `target_ratio` line per performance target (figure / target, and whether it is met),
//! and with `--runs N` a `target_median` line per target over the runs.

use std::sync::Mutex;

/// A target's figure as one run printed it, kept for [`print_medians`].
struct Recorded {
    workload: String,
    store: String,
    figure_name: String,
    figure: f64,
    goal: Goal,
    target: f64,
}

/// Every target figure printed so far, in order.
static RECORDED: Mutex<Vec<Recorded>> = Mutex::new(Vec::new());

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub fn report(workload: &str, store: &str, figures: &[(&str, f64)]) {
    let human: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v:.2}")).collect();
    println!("{workload:<11} {store:<7} {}", human.join("  "));
    let json: Vec<String> = figures.iter().map(|(k, v)| format!("\"{k}\":{v:.4}")).collect();
    println!("JSON {{\"workload\":\"{workload}\",\"store\":\"{store}\",{}}}", json.join(","));
}

/// Which side of its target a figure must stay on.
#[derive(Clone, Copy)]
pub enum Goal {
    AtLeast,
    AtMost,
}

/// Prints the figure against its target: `ratio` is figure / target, so 1.0 is the target
/// itself; an at-least target is met at a ratio of 1 or more, an at-most one at 1 or less.
pub fn target_ratio(workload: &str, store: &str, figure_name: &str, figure: f64, goal: Goal, target: f64) {
    RECORDED.lock().unwrap_or_else(|e| e.into_inner()).push(Recorded {
        workload: workload.to_string(),
        store: store.to_string(),
        figure_name: figure_name.to_string(),
        figure,
        goal,
        target,
    });
    print_target("target_ratio", workload, store, figure_name, figure, goal, target, &[]);
}

/// Prints, for every target printed more than once (`--runs N`), the median of its figures
/// (for an even number of runs, the upper of the middle two, as `percentile` picks)
/// and the figures of each run, with the median's ratio to the target.
pub fn print_medians() {
    let recorded = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
    let mut seen: Vec<(&str, &str, &str)> = Vec::new();
    for r in recorded.iter() {
        let key = (r.workload.as_str(), r.store.as_str(), r.figure_name.as_str());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let figures: Vec<f64> = recorded
            .iter()
            .filter(|o| (o.workload.as_str(), o.store.as_str(), o.figure_name.as_str()) == key)
            .map(|o| o.figure)
            .collect();
        if figures.len() < 2 {
            continue;
        }
        let mut sorted = figures.clone();
        sorted.sort_by(f64::total_cmp);
        let median = percentile(&sorted, 0.5);
        print_target("target_median", key.0, key.1, key.2, median, r.goal, r.target, &figures);
    }
}

#[allow(clippy::too_many_arguments)]
fn print_target(
    kind: &str,
    workload: &str,
    store: &str,
    figure_name: &str,
    figure: f64,
    goal: Goal,
    target: f64,
    runs: &[f64],
) {
    let ratio = figure / target;
    let listed = |digits: usize| runs.iter().map(|f| format!("{f:.digits$}")).collect::<Vec<_>>().join(",");
    let (runs_human, runs_json) = match runs.is_empty() {
        true => (String::new(), String::new()),
        false => (format!(" runs=[{}]", listed(3)), format!(",\"runs\":[{}]", listed(4))),
    };
    let (sign, met) = match goal {
        Goal::AtLeast => (">=", ratio >= 1.0),
        Goal::AtMost => ("<=", ratio <= 1.0),
    };
    let met = if met { "yes" } else { "no" };
    println!(
        "{kind} {workload} {store} {figure_name}={figure:.3}{runs_human} target{sign}{target} ratio={ratio:.3} met={met}"
    );
    println!(
        "JSON {{\"{kind}\":\"{workload}\",\"store\":\"{store}\",\"figure\":\"{figure_name}\",\
         \"value\":{figure:.4},\"goal\":\"{sign}\",\"target\":{target},\"ratio\":{ratio:.4},\"met\":\"{met}\"{runs_json}}}"
    );
}
