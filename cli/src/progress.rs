//! Progress renderers (§5.4): `plain` lines, one `json` object per event,
//! and a live `tty` view. All write to stderr.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cuedag_backends::{Event, EventKind, Level, TaskState};
use tokio::sync::mpsc::UnboundedReceiver;

/// The `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `tty` when stderr is a terminal, else `plain`.
    Auto,
    /// One line per event.
    Plain,
    /// Live view.
    Tty,
    /// One JSON object per event.
    Json,
}

impl LogFormat {
    /// Parses a `--log-format` value.
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text {
            "auto" => Some(LogFormat::Auto),
            "plain" => Some(LogFormat::Plain),
            "tty" | "tty2" => Some(LogFormat::Tty),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    /// Resolves `auto` against the terminal.
    pub fn resolve(self) -> LogFormat {
        match self {
            LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Tty,
            LogFormat::Auto => LogFormat::Plain,
            other => other,
        }
    }
}

/// Parses a `--log-level` value (zerolog names).
pub fn parse_level(text: &str) -> Option<Level> {
    match text.to_ascii_lowercase().as_str() {
        "trace" => Some(Level::Trace),
        "debug" => Some(Level::Debug),
        "info" | "" => Some(Level::Info),
        "warn" | "warning" => Some(Level::Warn),
        "error" | "fatal" | "panic" => Some(Level::Error),
        _ => None,
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

fn event_level(event: &Event) -> Level {
    match &event.kind {
        EventKind::Log { level, .. } => *level,
        EventKind::State {
            state: TaskState::Failed,
            ..
        } => Level::Error,
        EventKind::State { .. } => Level::Info,
    }
}

/// Seconds with one decimal, as Dagger prints durations (`0.0s` under 0.05 s).
pub fn format_seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// `h:mmPM` in UTC.
fn clock(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let minutes_of_day = (secs / 60) % (24 * 60);
    let (hour, minute) = (minutes_of_day / 60, minutes_of_day % 60);
    let suffix = if hour < 12 { "AM" } else { "PM" };
    let hour12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    format!("{hour12}:{minute:02}{suffix}")
}

/// RFC 3339 UTC timestamp with milliseconds.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// One progress group (a task path with hidden suffixes folded).
#[derive(Debug, Clone)]
struct Group {
    name: String,
    state: TaskState,
    started: Option<Instant>,
    elapsed: Duration,
    running_tasks: usize,
    logs: Vec<String>,
}

fn group_name(task: &str) -> String {
    // Fold `._hidden` suffixes into the visible parent (outside quotes).
    let mut in_quotes = false;
    let bytes = task.as_bytes();
    for (i, c) in task.char_indices() {
        match c {
            '"' if i == 0 || bytes[i - 1] != b'\\' => in_quotes = !in_quotes,
            '.' if !in_quotes && task[i + 1..].starts_with('_') => return task[..i].to_string(),
            _ => {}
        }
    }
    task.to_string()
}

fn icon(state: TaskState) -> &'static str {
    match state {
        TaskState::Computing => "[+]",
        TaskState::Completed => "[✔]",
        TaskState::Failed | TaskState::Cancelled => "[✗]",
        TaskState::Skipped => "[-]",
    }
}

fn colour(state: TaskState) -> &'static str {
    match state {
        TaskState::Computing => "\x1b[94m",
        TaskState::Completed => "\x1b[32m",
        TaskState::Failed => "\x1b[31m",
        TaskState::Cancelled => "\x1b[33m",
        TaskState::Skipped => "\x1b[36m",
    }
}

/// Groups in order of first appearance, tracking state and time.
#[derive(Debug, Default)]
struct Groups {
    order: Vec<String>,
    groups: BTreeMap<String, Group>,
}

impl Groups {
    fn update(&mut self, event: &Event) {
        let Some(task) = &event.task else { return };
        let name = group_name(task);
        if !self.groups.contains_key(&name) {
            self.order.push(name.clone());
            self.groups.insert(
                name.clone(),
                Group {
                    name: name.clone(),
                    state: TaskState::Computing,
                    started: None,
                    elapsed: Duration::ZERO,
                    running_tasks: 0,
                    logs: Vec::new(),
                },
            );
        }
        let Some(group) = self.groups.get_mut(&name) else {
            return;
        };
        match &event.kind {
            EventKind::Log { message, .. } => group.logs.push(message.clone()),
            EventKind::State { state, error, .. } => match state {
                TaskState::Computing => {
                    group.running_tasks += 1;
                    group.state = TaskState::Computing;
                    group.started.get_or_insert_with(Instant::now);
                }
                TaskState::Skipped => group.state = TaskState::Skipped,
                done => {
                    group.running_tasks = group.running_tasks.saturating_sub(1);
                    if let Some(started) = group.started {
                        group.elapsed = started.elapsed();
                    }
                    if let Some(error) = error {
                        group.logs.push(error.clone());
                    }
                    let worse = matches!(group.state, TaskState::Failed | TaskState::Cancelled);
                    if group.running_tasks == 0 && !worse || *done == TaskState::Failed {
                        group.state = *done;
                    }
                }
            },
        }
    }

    fn elapsed(group: &Group) -> Duration {
        match (group.state, group.started) {
            (TaskState::Computing, Some(started)) => started.elapsed(),
            _ => group.elapsed,
        }
    }
}

fn terminal_width() -> usize {
    terminal_size::terminal_size_of(std::io::stderr())
        .map(|(w, _)| usize::from(w.0))
        .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
        .unwrap_or(80)
        .max(20)
}

fn header(group: &Group, width: usize) -> String {
    let left = format!("{} {}", icon(group.state), group.name);
    let right = format_seconds(Groups::elapsed(group));
    let left = truncate(&left, width.saturating_sub(right.len() + 1));
    let pad = width.saturating_sub(left.chars().count() + right.len());
    format!("{left}{}{right}", " ".repeat(pad))
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Consumes progress events until the sending side closes, rendering them
/// in `format` and dropping those below `min_level`. Runs on its own thread.
pub fn render(mut events: UnboundedReceiver<Event>, format: LogFormat, min_level: Level) {
    let stderr = std::io::stderr();
    let colours = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match format.resolve() {
        LogFormat::Json => {
            while let Some(event) = events.blocking_recv() {
                if event_level(&event) >= min_level {
                    let _ = writeln!(stderr.lock(), "{}", json_line(&event));
                }
            }
        }
        LogFormat::Tty => render_tty(&mut events, min_level),
        _ => {
            let mut groups = Groups::default();
            while let Some(event) = events.blocking_recv() {
                groups.update(&event);
                if event_level(&event) >= min_level {
                    let _ = writeln!(stderr.lock(), "{}", plain_line(&event, colours));
                }
            }
            let width = terminal_width().min(80);
            let mut out = stderr.lock();
            for name in &groups.order {
                if let Some(group) = groups.groups.get(name) {
                    let _ = writeln!(out, "{}", header(group, width));
                }
            }
        }
    }
}

fn render_tty(events: &mut UnboundedReceiver<Event>, min_level: Level) {
    let stderr = std::io::stderr();
    let mut groups = Groups::default();
    let mut system: Vec<String> = Vec::new();
    let mut drawn_lines = 0usize;
    let tick = Duration::from_millis(100);
    let mut closed = false;
    while !closed {
        // Drain what is there, then redraw at most every tick.
        let deadline = Instant::now() + tick;
        loop {
            match events.try_recv() {
                Ok(event) => {
                    if event.task.is_none() {
                        if event_level(&event) >= min_level {
                            if let EventKind::Log { message, .. } = &event.kind {
                                system.push(message.clone());
                            }
                        }
                    } else if event_level(&event) >= min_level
                        || matches!(event.kind, EventKind::State { .. })
                    {
                        groups.update(&event);
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    if Instant::now() >= deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let width = terminal_width();
        let mut lines: Vec<String> = system.iter().map(|line| truncate(line, width)).collect();
        for name in &groups.order {
            let Some(group) = groups.groups.get(name) else {
                continue;
            };
            lines.push(format!(
                "{}{}\x1b[0m",
                colour(group.state),
                header(group, width)
            ));
            let shown: &[String] = match group.state {
                TaskState::Computing => &group.logs[group.logs.len().saturating_sub(5)..],
                TaskState::Failed => &group.logs,
                _ => &[],
            };
            for log in shown {
                lines.push(format!("\x1b[2m{}\x1b[0m", truncate(log, width)));
            }
        }
        let mut out = stderr.lock();
        if drawn_lines > 0 {
            let _ = write!(out, "\x1b[{drawn_lines}A\r\x1b[J");
        }
        for line in &lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        drawn_lines = lines.len();
    }
}

/// One plain line: `9:02AM INFO  actions.build | completed duration=1.2s`.
pub fn plain_line(event: &Event, colours: bool) -> String {
    let level = event_level(event);
    let source = event.task.as_deref().unwrap_or("system");
    let (message, mut fields) = match &event.kind {
        EventKind::Log {
            message, fields, ..
        } => (message.clone(), fields.clone()),
        EventKind::State {
            state,
            duration,
            error,
        } => {
            let mut fields = Vec::new();
            if let Some(duration) = duration {
                if *state != TaskState::Computing {
                    fields.push(("duration".to_string(), format_seconds(*duration)));
                }
            }
            if let Some(error) = error {
                fields.push(("error".to_string(), error.clone()));
            }
            (state.as_str().to_string(), fields)
        }
    };
    fields.sort();
    let level_text = format!("{:<5}", level_name(level).to_uppercase());
    let level_text = if colours {
        let code = match level {
            Level::Error => "31",
            Level::Warn => "33",
            Level::Info => "32",
            _ => "90",
        };
        format!("\x1b[{code}m{level_text}\x1b[0m")
    } else {
        level_text
    };
    let mut line = format!("{} {level_text} {source} | {message}", clock(event.time));
    for (key, value) in fields {
        line.push_str(&format!(" {key}={value}"));
    }
    line
}

/// One JSON object (zerolog style): `level`, `time`, `message`, `task`,
/// `state`, `duration` (milliseconds), `error`, extra fields.
pub fn json_line(event: &Event) -> String {
    let mut object = serde_json::Map::new();
    object.insert("level".into(), level_name(event_level(event)).into());
    object.insert("time".into(), rfc3339(event.time).into());
    if let Some(task) = &event.task {
        object.insert("task".into(), task.clone().into());
    }
    match &event.kind {
        EventKind::Log {
            message, fields, ..
        } => {
            object.insert("message".into(), message.clone().into());
            for (key, value) in fields {
                object.insert(key.clone(), value.clone().into());
            }
        }
        EventKind::State {
            state,
            duration,
            error,
        } => {
            object.insert("message".into(), state.as_str().into());
            object.insert("state".into(), state.as_str().into());
            if let Some(duration) = duration {
                object.insert("duration".into(), (duration.as_secs_f64() * 1000.0).into());
            }
            if let Some(error) = error {
                object.insert("error".into(), error.clone().into());
            }
        }
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(task: &str, state: TaskState, secs: f64) -> Event {
        Event {
            time: UNIX_EPOCH + Duration::from_secs(13 * 3600 + 5 * 60),
            task: Some(task.into()),
            kind: EventKind::State {
                state,
                duration: Some(Duration::from_secs_f64(secs)),
                error: None,
            },
        }
    }

    #[test]
    fn plain_and_json_lines() {
        let event = state("actions.build._exec", TaskState::Completed, 1.26);
        assert_eq!(
            plain_line(&event, false),
            "1:05PM INFO  actions.build._exec | completed duration=1.3s"
        );
        let json: serde_json::Value = serde_json::from_str(&json_line(&event)).unwrap();
        assert_eq!(json["state"], "completed");
        assert_eq!(json["task"], "actions.build._exec");
        assert_eq!(json["time"], "1970-01-01T13:05:00.000Z");
        assert_eq!(json["duration"], 1260.0);
    }

    #[test]
    fn groups_fold_hidden_suffixes() {
        assert_eq!(
            group_name("actions.build.container._exec"),
            "actions.build.container"
        );
        assert_eq!(
            group_name(r#"client.filesystem."./_x".write"#),
            r#"client.filesystem."./_x".write"#
        );
        let mut groups = Groups::default();
        groups.update(&state("actions.a._x", TaskState::Computing, 0.0));
        groups.update(&state("actions.a._y", TaskState::Computing, 0.0));
        groups.update(&state("actions.a._x", TaskState::Completed, 0.0));
        assert_eq!(groups.groups["actions.a"].state, TaskState::Computing);
        groups.update(&state("actions.a._y", TaskState::Completed, 0.0));
        assert_eq!(groups.groups["actions.a"].state, TaskState::Completed);
        let line = header(&groups.groups["actions.a"], 40);
        assert!(line.starts_with("[✔] actions.a "), "{line}");
        assert!(line.ends_with("0.0s"), "{line}");
        assert_eq!(line.chars().count(), 40);
    }

    #[test]
    fn dates_are_civil() {
        let t = UNIX_EPOCH + Duration::from_secs(1_764_063_000);
        assert_eq!(rfc3339(t), "2025-11-25T09:30:00.000Z");
        assert_eq!(format_seconds(Duration::from_millis(40)), "0.0s");
        assert_eq!(parse_level("DEBUG"), Some(Level::Debug));
        assert_eq!(LogFormat::parse("bogus"), None);
    }
}
