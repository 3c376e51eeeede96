//! The pipeline file as written: TOML read into typed sections that keep every span.
//!
//! This is the first phase of loading (`spec → pipeline → plan`). It checks *shape* only: which
//! keys exist and what type each value has. Meaning (durations, references, cycles) is checked by
//! [`crate::pipeline`].
//!
//! The document is parsed once into toml's spanned tree, then each section (`[pipeline]`, each
//! param, `[defaults]`, each resource, `[alerts]`, each `[tasks.ID]`) is deserialized with serde on
//! its own. A mistake in one section therefore does not hide mistakes in the others, and unknown
//! keys are found by comparing a section's keys with the field names serde itself derived, so
//! they are all reported, each with a did-you-mean.

use std::fmt;
use std::ops::Range;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::diag::{Diagnostic, did_you_mean};
use crate::duration::RawDuration;

/// `[pipeline]`
#[derive(Debug, Default, Deserialize)]
pub struct PipelineSection {
    pub description: Option<Spanned<String>>,
    pub schedule: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub workers: Option<Spanned<i64>>,
    pub catchup: Option<Spanned<String>>,
    pub catchup_window: Option<Spanned<RawDuration>>,
    pub max_active_runs: Option<Spanned<i64>>,
    pub executor: Option<Spanned<String>>,
    pub deadline: Option<Spanned<RawDuration>>,
}

/// One entry of `[params]`: `region = "eu"` or `date = { type = "date", default = "yesterday" }`.
#[derive(Debug, Clone)]
pub enum ParamRaw {
    Plain(String),
    Typed(TypedParam),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TypedParam {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub default: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// A time param's slot length.
    pub every: Option<Spanned<RawDuration>>,
}

/// Keys a task may set, and `[defaults]` may set for every task.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskSection {
    pub description: Option<Spanned<String>>,
    pub command: Option<Spanned<CommandRaw>>,
    pub requires: Option<Vec<Spanned<String>>>,
    pub outputs: Option<Vec<Spanned<String>>>,
    pub check: Option<Spanned<CommandRaw>>,
    pub env: Option<IndexMap<String, Spanned<String>>>,
    pub cwd: Option<Spanned<String>>,
    pub timeout: Option<Spanned<RawDuration>>,
    pub grace: Option<Spanned<RawDuration>>,
    pub retries: Option<Spanned<i64>>,
    pub retry_delay: Option<Spanned<RawDuration>>,
    pub max_retry_delay: Option<Spanned<RawDuration>>,
    pub resources: Option<Spanned<IndexMap<String, Spanned<i64>>>>,
    pub priority: Option<Spanned<i64>>,
    pub sla: Option<Spanned<RawDuration>>,
    pub foreach: Option<Spanned<ForeachAxes>>,
    pub wait: Option<Spanned<RawDuration>>,
    pub executor: Option<Spanned<String>>,
    /// `[tasks.ID.expect.NAME]`, each read on its own (see `task_section`).
    #[serde(skip)]
    pub expect: Vec<(Spanned<String>, ExpectSection)>,
}

/// `[tasks.ID.expect.NAME]`: what a metric the task records must look like.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExpectSection {
    pub min: Option<Spanned<Number>>,
    pub max: Option<Spanned<Number>>,
    pub anomaly: Option<Spanned<String>>,
    pub window: Option<Spanned<RawDuration>>,
    pub min_history: Option<Spanned<i64>>,
    pub sensitivity: Option<Spanned<Number>>,
    pub min_change: Option<Spanned<RawPercent>>,
}

/// A TOML integer or float, as a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

/// A percentage as written: `"20%"`, or a bare number that must be refused (is 0.2 meant as
/// 20 % or as 0.2 %?).
#[derive(Debug, Clone, PartialEq)]
pub enum RawPercent {
    Text(String),
    Number(f64),
}

/// `[defaults]`: the subset of task keys that make sense for every task.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DefaultsSection {
    pub timeout: Option<Spanned<RawDuration>>,
    pub grace: Option<Spanned<RawDuration>>,
    pub retries: Option<Spanned<i64>>,
    pub retry_delay: Option<Spanned<RawDuration>>,
    pub max_retry_delay: Option<Spanned<RawDuration>>,
    pub sla: Option<Spanned<RawDuration>>,
    pub env: Option<IndexMap<String, Spanned<String>>>,
    pub cwd: Option<Spanned<String>>,
    pub executor: Option<Spanned<String>>,
}

/// `[alerts]`, in a pipeline or in `plumb.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlertsSection {
    pub email: Option<Spanned<StringList>>,
    pub on: Option<Vec<Spanned<String>>>,
}

/// A command: a string for `/bin/sh -c`, or an argv array run directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandRaw {
    Shell(String),
    Argv(Vec<Spanned<String>>),
}

/// A string, or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringList(pub Vec<String>);

/// A `foreach` table: each axis name with its list of values, every piece with its position.
pub type ForeachAxes = IndexMap<String, Spanned<Vec<Spanned<Scalar>>>>;

/// A `foreach` value: strings, integers and booleans are all accepted and used as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

/// The whole file, section by section, in file order.
#[derive(Debug, Default)]
pub struct PipelineFile {
    pub pipeline: PipelineSection,
    pub params: Vec<(Spanned<String>, Spanned<ParamRaw>)>,
    pub defaults: DefaultsSection,
    pub resources: Vec<(Spanned<String>, Spanned<i64>)>,
    pub alerts: Option<AlertsSection>,
    pub tasks: Vec<(Spanned<String>, TaskSection)>,
}

/// `plumb.toml`: project-wide settings. Every key is optional; an empty file is valid.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectSection {
    pub state_dir: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct ProjectFile {
    pub project: ProjectSection,
    pub alerts: Option<AlertsSection>,
    pub defaults: DefaultsSection,
}

/// Read a pipeline file's shape. Problems go to `diags`; whatever could be read is returned.
pub fn parse_pipeline(text: &str, diags: &mut Vec<Diagnostic>) -> Option<PipelineFile> {
    let root = parse_document(text, diags)?;
    let mut file = PipelineFile::default();
    // The document is consumed section by section, so each task's parsed tree is freed as soon
    // as its section is read (at 100,000 tasks this lowers the peak by a fifth).
    for (key, value) in root.into_inner() {
        top_level(&mut file, key, value, diags);
    }
    Some(file)
}

/// A file at least this big is first read in pieces of about this size (`parse_pipeline_in_pieces`).
pub const PIECE_BYTES: usize = 256 * 1024;

/// Read a big, valid pipeline file in pieces, to bound memory: the TOML parser holds every token,
/// every parse event and the whole tree of what it parses at once, about 25 bytes per byte of
/// text (300 MB for a 100,000-task file); piece by piece, only one piece's worth is held at a
/// time. The file is cut only between table headers where the table changes (another top-level
/// key, or another task), outside any value, as the TOML lexer sees it.
///
/// `None` means "read it whole instead": when the file has something that makes pieces unsafe to
/// read alone (an array of tables, a quoted header key, a table or task defined in two places)
/// or any problem at all. Spans in the result are relative to their piece, so this is only for
/// files that turn out valid; the whole read reports problems where they are.
pub fn parse_pipeline_in_pieces(text: &str, piece: usize) -> Option<PipelineFile> {
    let cuts = cut_points(text, piece)?;
    if cuts.len() <= 2 {
        return None;
    }
    let mut file = PipelineFile::default();
    let mut diags = Vec::new();
    let mut top_keys = std::collections::HashSet::new();
    let mut tasks = std::collections::HashSet::new();
    for w in cuts.windows(2) {
        let root = parse_document(&text[w[0]..w[1]], &mut diags)?;
        for (key, value) in root.into_inner() {
            if key.get_ref() == "tasks" {
                if let DeValue::Table(t) = value.get_ref() {
                    for name in t.keys() {
                        if !tasks.insert(name.get_ref().to_string()) {
                            return None;
                        }
                    }
                }
            } else if !top_keys.insert(key.get_ref().to_string()) {
                return None;
            }
            top_level(&mut file, key, value, &mut diags);
        }
        if !diags.is_empty() {
            return None;
        }
    }
    Some(file)
}

/// Byte offsets where `text` may be cut into pieces of at least `piece` bytes (the first is 0,
/// the last `text.len()`), or `None` if it must be read whole.
fn cut_points(text: &str, piece: usize) -> Option<Vec<usize>> {
    use toml_parser::lexer::TokenKind;
    let mut cuts = vec![0];
    let mut group: Option<(&str, Option<&str>)> = None;
    let (mut line_start, mut depth, mut in_value) = (true, 0usize, false);
    let mut lexer = toml_parser::Source::new(text).lex();
    while let Some(tok) = lexer.next() {
        match tok.kind() {
            TokenKind::Newline => {
                if depth == 0 {
                    in_value = false;
                    line_start = true;
                }
                continue;
            }
            TokenKind::Whitespace | TokenKind::Comment => continue,
            TokenKind::Eof => break,
            TokenKind::LeftSquareBracket if line_start && depth == 0 && !in_value => {
                let start = tok.span().start();
                let mut key = Vec::new();
                loop {
                    let t = lexer.next()?;
                    match t.kind() {
                        TokenKind::Atom => key.push(&text[t.span().start()..t.span().end()]),
                        TokenKind::Dot | TokenKind::Whitespace => {}
                        TokenKind::RightSquareBracket => break,
                        _ => return None,
                    }
                }
                let first = *key.first()?;
                let this = (first, (first == "tasks").then(|| key.get(1).copied()).flatten());
                if group.is_some_and(|g| g != this) && start - cuts.last().copied().unwrap_or(0) >= piece {
                    cuts.push(start);
                }
                group = Some(this);
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => depth = depth.checked_sub(1)?,
            TokenKind::Equals if depth == 0 => in_value = true,
            _ => {}
        }
        line_start = false;
    }
    cuts.push(text.len());
    Some(cuts)
}

/// One top-level entry of a pipeline file.
fn top_level<'i>(
    file: &mut PipelineFile,
    key: Spanned<std::borrow::Cow<'i, str>>,
    value: Spanned<DeValue<'i>>,
    diags: &mut Vec<Diagnostic>,
) {
    match key.get_ref().as_ref() {
        "pipeline" => {
            if let Some(s) = section(&value, "[pipeline]", diags) {
                file.pipeline = s;
            }
        }
        "params" => {
            for (k, v) in entries(&value, "[params]", diags) {
                if let Some(p) = param(v, &k, diags) {
                    file.params.push((k, p));
                }
            }
        }
        "defaults" => {
            if let Some(s) = section(&value, "[defaults]", diags) {
                file.defaults = s;
            }
        }
        "resources" => {
            for (k, v) in entries(&value, "[resources]", diags) {
                if let Some(n) = typed::<i64>(v, &format!("resource `{}`", k.get_ref()), diags) {
                    file.resources.push((k, Spanned::new(v.span(), n)));
                }
            }
        }
        "alerts" => file.alerts = section(&value, "[alerts]", diags),
        "tasks" => match value.into_inner() {
            DeValue::Table(tasks) => {
                for (k, v) in tasks {
                    let name = Spanned::new(k.span(), k.get_ref().to_string());
                    let what = format!("task `{}`", name.get_ref());
                    if let Some(t) = task_section(&v, &what, diags) {
                        file.tasks.push((name, t));
                    }
                }
            }
            other => diags.push(
                Diagnostic::new(format!("[tasks] must be a table, found {}", other.type_str()))
                    .at(key.span()),
            ),
        },
        other => diags.push(unknown_key(
            other,
            key.span(),
            "at the top level",
            &["pipeline", "params", "defaults", "resources", "alerts", "tasks"],
        )),
    }
}

/// One `[tasks.ID]`, with each of its `expect` tables read as a section of its own, so that
/// each one's unknown keys and wrong types are reported too.
fn task_section(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<TaskSection> {
    let mut task: TaskSection = section_with_extra(value, what, &["expect"], diags)?;
    let DeValue::Table(table) = value.get_ref() else {
        return Some(task);
    };
    let Some((key, expect)) = table.iter().find(|(k, _)| k.get_ref() == "expect") else {
        return Some(task);
    };
    let DeValue::Table(metrics) = expect.get_ref() else {
        diags.push(
            Diagnostic::new(format!(
                "`expect` in {what} must be a table of metrics, like [tasks.load.expect.rows], found {}",
                expect.get_ref().type_str()
            ))
            .at(key.span()),
        );
        return Some(task);
    };
    for (name, v) in metrics {
        let place = format!("`expect.{}` of {what}", name.get_ref());
        if let Some(e) = section(v, &place, diags) {
            task.expect
                .push((Spanned::new(name.span(), name.get_ref().to_string()), e));
        }
    }
    Some(task)
}

/// Read `plumb.toml`'s shape.
pub fn parse_project(text: &str, diags: &mut Vec<Diagnostic>) -> Option<ProjectFile> {
    let root = parse_document(text, diags)?;
    let mut file = ProjectFile::default();
    let mut top = IndexMap::new();
    for (key, value) in root.get_ref() {
        match key.get_ref().as_ref() {
            "alerts" => file.alerts = section(value, "[alerts]", diags),
            "defaults" => {
                if let Some(s) = section(value, "[defaults]", diags) {
                    file.defaults = s;
                }
            }
            _ => {
                top.insert(key.clone(), value.clone());
            }
        }
    }
    // Remaining top-level keys are the [project] settings, written at the top of the file.
    let table = Spanned::new(root.span(), DeValue::Table(top.into_iter().collect()));
    if let Some(p) = section_with_extra(&table, "plumb.toml", &["alerts", "defaults"], diags) {
        file.project = p;
    }
    Some(file)
}

fn parse_document<'i>(text: &'i str, diags: &mut Vec<Diagnostic>) -> Option<Spanned<DeTable<'i>>> {
    match DeTable::parse(text) {
        Ok(t) => Some(t),
        Err(e) => {
            let mut d = Diagnostic::new(format!("invalid TOML: {}", e.message().trim()));
            if let Some(span) = e.span() {
                d = d.at(span);
            }
            diags.push(d);
            None
        }
    }
}

/// The entries of a table value, in file order; a non-table is reported.
fn entries<'a, 'i>(
    value: &'a Spanned<DeValue<'i>>,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(Spanned<String>, &'a Spanned<DeValue<'i>>)> {
    match value.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .map(|(k, v)| (Spanned::new(k.span(), k.get_ref().to_string()), v))
            .collect(),
        other => {
            diags.push(
                Diagnostic::new(format!("{what} must be a table, found {}", other.type_str()))
                    .at(value.span()),
            );
            Vec::new()
        }
    }
}

fn section<T: DeserializeOwned + 'static>(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    section_with_extra(value, what, &[], diags)
}

/// Deserialize one section after reporting each of its unknown keys. `extra` are keys handled
/// elsewhere that must not be reported.
fn section_with_extra<T: DeserializeOwned + 'static>(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    extra: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let DeValue::Table(table) = value.get_ref() else {
        diags.push(
            Diagnostic::new(format!(
                "{what} must be a table, found {}",
                value.get_ref().type_str()
            ))
            .at(value.span()),
        );
        return None;
    };
    let fields = field_names::<T>();
    let known: Vec<&str> = fields.iter().chain(extra).copied().collect();
    for (k, _) in table {
        let name: &str = k.get_ref();
        if !known.contains(&name) {
            diags.push(unknown_key(name, k.span(), &format!("in {what}"), &known));
        }
    }
    // serde stops at the first wrong type; report it, drop that key and read the section
    // again, so every wrong value is reported and the rest of the section still counts.
    let mut dropped: Vec<String> = Vec::new();
    loop {
        let clean: DeTable<'_> = table
            .iter()
            .filter(|(k, _)| {
                let name: &str = k.get_ref();
                fields.contains(&name) && !dropped.iter().any(|d| d == name)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match T::deserialize(ValueDeserializer::from(Spanned::new(
            value.span(),
            DeValue::Table(clean),
        ))) {
            Ok(t) => return Some(t),
            Err(e) => {
                let (diag, key) = type_error(&e, table, what);
                diags.push(diag);
                match key {
                    Some(k) if !dropped.contains(&k) => dropped.push(k),
                    _ => return None,
                }
            }
        }
    }
}

fn typed<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(t) => Some(t),
        Err(e) => {
            diags.push(
                Diagnostic::new(format!("{what}: {}", plain_message(e.message())))
                    .at(e.span().unwrap_or(value.span())),
            );
            None
        }
    }
}

fn param(
    value: &Spanned<DeValue<'_>>,
    key: &Spanned<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Spanned<ParamRaw>> {
    let what = format!("param `{}`", key.get_ref());
    let raw = match value.get_ref() {
        DeValue::String(s) => ParamRaw::Plain(s.to_string()),
        DeValue::Table(_) => ParamRaw::Typed(section(value, &what, diags)?),
        other => {
            diags.push(
                Diagnostic::new(format!(
                    "{what} must be a string or a table like {{ type = \"date\", default = \"yesterday\" }}, found {}",
                    other.type_str()
                ))
                .at(value.span()),
            );
            return None;
        }
    };
    Some(Spanned::new(value.span(), raw))
}

fn unknown_key(name: &str, span: Range<usize>, place: &str, known: &[&str]) -> Diagnostic {
    let d = Diagnostic::new(format!("unknown key `{name}` {place}")).at(span);
    match did_you_mean(name, known.iter().copied()) {
        Some(s) => d.label(format!("did you mean `{s}`?")),
        None => d.help(format!("known keys: {}", known.join(", "))),
    }
}

/// Turn serde's error into one that names the key and reads like English; also return the key.
fn type_error(e: &toml::de::Error, table: &DeTable<'_>, what: &str) -> (Diagnostic, Option<String>) {
    let span = e.span();
    let key = span.as_ref().and_then(|s| {
        table
            .iter()
            .find(|(_, v)| v.span().start <= s.start && s.end <= v.span().end)
            .map(|(k, _)| k.get_ref().to_string())
    });
    let message = match &key {
        Some(k) => format!("`{k}` in {what}: {}", plain_message(e.message())),
        None => format!("in {what}: {}", plain_message(e.message())),
    };
    let d = Diagnostic::new(message);
    let d = match span {
        Some(s) => d.at(s),
        None => d,
    };
    (d, key)
}

fn plain_message(m: &str) -> String {
    m.trim()
        .replace("expected i64", "expected an integer")
        .replace("a sequence", "an array")
        .replace("expected a map", "expected a table")
        .replace("invalid type: map", "invalid type: table")
        .replace("invalid type: sequence", "invalid type: array")
}

/// The field names serde derived for `T`, captured by a deserializer that only listens.
/// Computed once per type: a pipeline file has a section per task.
pub fn field_names<T: DeserializeOwned + 'static>() -> &'static [&'static str] {
    thread_local! {
        static CACHE: std::cell::RefCell<Vec<(std::any::TypeId, &'static [&'static str])>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let id = std::any::TypeId::of::<T>();
    if let Some(f) = CACHE.with(|c| c.borrow().iter().find(|(t, _)| *t == id).map(|(_, f)| *f)) {
        return f;
    }
    let f = probe_field_names::<T>();
    CACHE.with(|c| c.borrow_mut().push((id, f)));
    f
}

fn probe_field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

impl<'de> Deserialize<'de> for CommandRaw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandRaw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string (run by /bin/sh) or an array of strings (run directly)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandRaw, E> {
                Ok(CommandRaw::Shell(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<CommandRaw, A::Error> {
                let items = Vec::<Spanned<String>>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(CommandRaw::Argv(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawPercent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawPercent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a percentage like \"20%\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPercent, E> {
                Ok(RawPercent::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPercent, E> {
                Ok(RawPercent::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPercent, E> {
                Ok(RawPercent::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawPercent, E> {
                Ok(RawPercent::Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<StringList, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(StringList)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an integer or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_serde() {
        let f = field_names::<TaskSection>();
        assert!(f.contains(&"command") && f.contains(&"max_retry_delay") && f.contains(&"foreach"));
        assert_eq!(
            field_names::<TypedParam>(),
            &["type", "default", "description", "every"]
        );
    }

    #[test]
    fn collects_errors_from_every_section() {
        let text = "[pipeline]\nworkres = 2\n[tasks.a]\ncomand = 'x'\n[tasks.b]\nretries = 'two'\n";
        let mut d = Vec::new();
        let file = parse_pipeline(text, &mut d).unwrap();
        let msgs: Vec<_> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("unknown key `workres`"));
        assert_eq!(d[0].label.as_deref(), Some("did you mean `workers`?"));
        assert!(msgs[1].contains("unknown key `comand`"));
        assert!(
            msgs[2].starts_with("`retries` in task `b`: invalid type: string"),
            "{}",
            msgs[2]
        );
        // Task b is still read (without the bad key), so nothing else reports it missing.
        assert_eq!(file.tasks.len(), 2);
        assert!(file.tasks[1].1.retries.is_none());
    }

    #[test]
    fn command_forms() {
        let text = "[tasks.a]\ncommand = 'echo hi'\n[tasks.b]\ncommand = ['echo', 'hi']\n";
        let mut d = Vec::new();
        let file = parse_pipeline(text, &mut d).unwrap();
        assert!(d.is_empty(), "{d:?}");
        assert!(
            matches!(file.tasks[0].1.command.as_ref().unwrap().get_ref(), CommandRaw::Shell(s) if s == "echo hi")
        );
        assert!(
            matches!(file.tasks[1].1.command.as_ref().unwrap().get_ref(), CommandRaw::Argv(v) if v.len() == 2)
        );
    }
}
