//! Checking one `[tasks.ID]`: its definition with defaults applied, its templates and their
//! placeholders, its `foreach` fan-out, its `requires` resolved to tasks, and cycles among them.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::{BUILTINS, Builder, Command, Executor, Inherited, Task, TaskDef, env_var};
use crate::diag::{Diagnostic, did_you_mean};
use crate::duration::{self, RawDuration};
use crate::spec::{CommandRaw, TaskSection};
use crate::template::shell::refuse_argv;
use crate::template::{Lang, Refusal, ShellTemplate, Template, Why, is_identifier};

impl Builder<'_> {
    pub(super) fn foreach(&mut self, t: &TaskSection, params: &[&str]) -> Vec<(String, Vec<String>)> {
        let Some(fe) = &t.foreach else {
            return Vec::new();
        };
        let mut vars = Vec::new();
        if fe.get_ref().is_empty() {
            self.error(Diagnostic::new("`foreach` has no variables").at(fe.span()));
        }
        for (var, values) in fe.get_ref() {
            if !is_identifier(var) || BUILTINS.contains(&var.as_str()) || params.contains(&var.as_str()) {
                self.error(
                    Diagnostic::new(format!(
                        "foreach variable `{var}` must be a plain identifier that is not a param or built-in"
                    ))
                    .at(values.span()),
                );
                continue;
            }
            let env = env_var(var, true);
            if let Some((other, _)) = vars
                .iter()
                .find(|(o, _): &&(String, Vec<String>)| env_var(o, true) == env)
            {
                self.error(
                    Diagnostic::new(format!(
                        "foreach variables `{other}` and `{var}` would share the environment variable {env}"
                    ))
                    .at(values.span())
                    .help("a task could not tell them apart there; rename one of them"),
                );
            }
            if values.get_ref().is_empty() {
                self.error(
                    Diagnostic::new(format!("foreach variable `{var}` has an empty list"))
                        .at(values.span())
                        .help("give at least one value; a task with no instances would silently never run"),
                );
                continue;
            }
            let mut seen = HashSet::new();
            let mut list = Vec::new();
            for v in values.get_ref() {
                let s = &v.get_ref().0;
                if !seen.insert(s.clone()) {
                    self.error(Diagnostic::new(format!("foreach value \"{s}\" appears twice")).at(v.span()));
                } else if s.contains(['[', ']', ',', '=', '/'])
                    || s.is_empty()
                    || s.chars().any(char::is_control)
                {
                    self.error(
                        Diagnostic::new(format!(
                            "foreach value \"{}\" cannot be part of a task id",
                            s.escape_debug()
                        ))
                        .at(v.span())
                        .help("values must be non-empty and free of `[`, `]`, `,`, `=`, `/` and control characters"),
                    );
                } else {
                    list.push(s.clone());
                }
            }
            vars.push((var.clone(), list));
        }
        vars
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn task_def(
        &mut self,
        (id, id_span): (&str, Range<usize>),
        t: &TaskSection,
        inherited: &Inherited,
        pools: &[(String, u32)],
        params: &[&str],
        vars: &[(String, Vec<String>)],
    ) -> TaskDef {
        let mut known: Vec<&str> = params.to_vec();
        known.extend(BUILTINS);
        known.extend(vars.iter().map(|(v, _)| v.as_str()));
        let what = format!("task `{id}`");
        let place = format!("of {what}");

        // A task's own durations are checked here; inherited ones were checked (and reported
        // once) where [defaults] says them.
        let mut dur =
            |own: &Option<Spanned<RawDuration>>, inh: &Option<Spanned<RawDuration>>, key: &str| match own {
                Some(_) => self.duration(own.as_ref(), key, &place),
                None => inh.as_ref().and_then(|d| duration::parse(d.get_ref()).ok()),
            };
        let timeout = dur(&t.timeout, &inherited.timeout, "timeout");
        let grace = dur(&t.grace, &inherited.grace, "grace").unwrap_or(Duration::from_secs(10));
        let retry_delay =
            dur(&t.retry_delay, &inherited.retry_delay, "retry_delay").unwrap_or(Duration::from_secs(10));
        let max_retry_delay = dur(&t.max_retry_delay, &inherited.max_retry_delay, "max_retry_delay")
            .unwrap_or(Duration::from_secs(600));
        let sla = dur(&t.sla, &inherited.sla, "sla");
        if timeout == Some(Duration::ZERO)
            && let Some(s) = t.timeout.as_ref()
        {
            self.error(Diagnostic::new(format!("`timeout` of {what} must be longer than 0s")).at(s.span()));
        }
        let wait = self.duration(t.wait.as_ref(), "wait", &place);
        let retries = match t.retries.as_ref().or(inherited.retries.as_ref()) {
            None => 0,
            Some(r) => match u32::try_from(*r.get_ref()) {
                Ok(n) => n,
                Err(_) => {
                    self.error(Diagnostic::new("`retries` must be 0 or more").at(r.span()));
                    0
                }
            },
        };
        let executor = match t.executor.as_ref().or(inherited.executor.as_ref()) {
            Some(e) => self.executor(e),
            None => Executor::Local,
        };

        let command = t
            .command
            .as_ref()
            .map(|c| self.command(c, "command", &what, &known, vars));
        let check = t
            .check
            .as_ref()
            .map(|c| self.command(c, "check", &what, &known, vars));
        let outputs = t
            .outputs
            .iter()
            .flatten()
            .filter_map(|o| self.template(o, "outputs", &what, &known))
            .collect();
        let mut env = Vec::new();
        let own_env = t.env.iter().flatten().map(|(k, v)| (k.clone(), v.clone()));
        let mut merged: Vec<(String, Spanned<String>)> = inherited.env.clone();
        for (k, v) in own_env {
            merged.retain(|(ek, _)| ek != &k);
            merged.push((k, v));
        }
        for (k, v) in &merged {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                self.error(
                    Diagnostic::new(format!("`{k}` is not a valid environment variable name")).at(v.span()),
                );
                continue;
            }
            if let Some(tpl) = self.template(v, "env", &what, &known) {
                env.push((k.clone(), tpl));
            }
        }
        let cwd = t
            .cwd
            .as_ref()
            .or(inherited.cwd.as_ref())
            .and_then(|c| self.template(c, "cwd", &what, &known));

        let mut resources = Vec::new();
        if let Some(res) = &t.resources {
            for (name, amount) in res.get_ref() {
                let Some(pool) = pools.iter().position(|(n, _)| n == name) else {
                    let d = Diagnostic::new(format!("{what} uses resource `{name}`, which is not declared"))
                        .at(amount.span());
                    let d = match did_you_mean(name, pools.iter().map(|(n, _)| n.as_str())) {
                        Some(s) => d.label(format!("did you mean `{s}`?")),
                        None => d.help(format!("declare it under [resources], e.g. `{name} = 1`")),
                    };
                    self.error(d);
                    continue;
                };
                let cap = pools[pool].1;
                match u32::try_from(*amount.get_ref()) {
                    Ok(a) if a >= 1 && a <= cap => resources.push((pool, a)),
                    Ok(a) if a > cap => self.error(
                        Diagnostic::new(format!(
                            "{what} asks for {a} of resource `{name}`, but the pool holds only {cap}"
                        ))
                        .at(amount.span())
                        .help("the task could never start; lower the amount or raise the pool"),
                    ),
                    _ => self.error(
                        Diagnostic::new(format!("{what} must ask for at least 1 of resource `{name}`"))
                            .at(amount.span()),
                    ),
                }
            }
        }

        if command.is_none() {
            let external_only = "a task without `command` is an external input";
            if t.outputs.as_ref().is_none_or(|o| o.is_empty()) {
                self.error(
                    Diagnostic::new(format!("{what} has neither `command` nor `outputs`"))
                        .at(id_span)
                        .help(format!(
                            "{external_only}, done when its `outputs` exist: give it `outputs` or a `command`"
                        )),
                );
            }
            for (key, span) in [
                ("check", t.check.as_ref().map(|c| c.span())),
                ("retries", t.retries.as_ref().map(|c| c.span())),
                ("timeout", t.timeout.as_ref().map(|c| c.span())),
                ("sla", t.sla.as_ref().map(|c| c.span())),
            ] {
                if let Some(span) = span {
                    self.error(
                        Diagnostic::new(format!("`{key}` needs a `command`"))
                            .at(span)
                            .help(format!(
                                "{external_only}; it runs nothing, so `{key}` has no meaning"
                            )),
                    );
                }
            }
        } else if let Some(w) = &t.wait {
            self.error(
                Diagnostic::new("`wait` applies only to tasks without `command` (external inputs)")
                    .at(w.span())
                    .help("a task with a command waits for its `requires` anyway"),
            );
        }

        let expect = self.expectations(&t.expect, &what, command.is_some());
        TaskDef {
            name: id.to_string(),
            description: t.description.as_ref().map(|d| d.get_ref().clone()),
            command,
            check,
            outputs,
            env,
            cwd,
            timeout,
            grace,
            retries,
            retry_delay,
            max_retry_delay,
            resources,
            priority: t.priority.as_ref().map_or(0, |p| *p.get_ref()),
            sla,
            wait,
            executor,
            expect,
        }
    }

    fn command(
        &mut self,
        c: &Spanned<CommandRaw>,
        key: &str,
        what: &str,
        known: &[&str],
        vars: &[(String, Vec<String>)],
    ) -> Command {
        match c.get_ref() {
            CommandRaw::Shell(s) => {
                if s.trim().is_empty() {
                    self.error(Diagnostic::new(format!("`{key}` of {what} is empty")).at(c.span()));
                }
                let s = Spanned::new(c.span(), s.clone());
                let t = self
                    .template(&s, key, what, known)
                    .unwrap_or_else(|| Template::parse("").expect("empty"));
                match ShellTemplate::new(t) {
                    Ok(t) => Command::Shell(t),
                    Err(refusals) => {
                        for r in refusals {
                            let at = self.inner_span(&s, &r.at);
                            self.error(refusal(&r, key, what, vars).at(at));
                        }
                        Command::Shell(
                            ShellTemplate::new(Template::parse("").expect("empty")).expect("no placeholders"),
                        )
                    }
                }
            }
            CommandRaw::Argv(items) => {
                if items.is_empty() {
                    self.error(Diagnostic::new(format!("`{key}` of {what} is an empty array")).at(c.span()));
                }
                let templates: Vec<Template> = items
                    .iter()
                    .map(|i| {
                        self.template(i, key, what, known)
                            .unwrap_or_else(|| Template::parse("").expect("empty"))
                    })
                    .collect();
                for (i, r) in refuse_argv(&templates) {
                    let at = self.inner_span(&items[i], &r.at);
                    self.error(refusal(&r, key, what, vars).at(at));
                }
                Command::Argv(templates)
            }
        }
    }

    /// Parse a template and check its placeholders, pointing errors at the placeholder itself.
    fn template(&mut self, s: &Spanned<String>, key: &str, what: &str, known: &[&str]) -> Option<Template> {
        if s.get_ref().contains('\0') {
            self.error(
                Diagnostic::new(format!(
                    "`{key}` of {what} holds a NUL byte, which no command can be given"
                ))
                .at(s.span()),
            );
            return None;
        }
        match Template::parse(s.get_ref()) {
            Err(e) => {
                let at = self.inner_span(s, &e.at);
                self.error(Diagnostic::new(format!("in `{key}` of {what}: {}", e.message)).at(at));
                None
            }
            Ok(t) => {
                for (name, at) in t.placeholders() {
                    if !known.contains(&name) {
                        let d = Diagnostic::new(format!(
                            "unknown placeholder `{{{{{name}}}}}` in `{key}` of {what}"
                        ))
                        .at(self.inner_span(s, at));
                        let d = match did_you_mean(name, known.iter().copied()) {
                            Some(k) => d.label(format!("did you mean `{{{{{k}}}}}`?")),
                            None => d.help(format!("known here: {}", known.join(", "))),
                        };
                        self.error(d);
                    }
                }
                Some(t)
            }
        }
    }

    /// Map a byte range inside a string's value to the file, through the string's escapes; when
    /// the value cannot be matched to its source, point at the whole string.
    fn inner_span(&self, s: &Spanned<String>, r: &Range<usize>) -> Range<usize> {
        let span = s.span();
        let raw = self.source.text.get(span.clone()).unwrap_or("");
        match value_offsets(raw) {
            Some((value, at)) if value == *s.get_ref() && r.start < r.end && r.end <= at.len() => {
                span.start + at[r.start]..span.start + at[r.end - 1] + 1
            }
            _ => span,
        }
    }

    /// Resolve every task's `requires` to task indices, with the span of the entry.
    pub(super) fn requires(
        &mut self,
        tasks: &[Task],
        defs: &[(Range<usize>, Vec<Spanned<String>>)],
        index: &super::TaskIndex,
        by_name: &HashMap<String, Vec<usize>>,
    ) -> Vec<Vec<(usize, Range<usize>)>> {
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            let mut deps = Vec::new();
            for req in &defs[task.def].1 {
                let text = match Template::parse(req.get_ref()) {
                    Ok(t) => {
                        let bad: Vec<String> = t
                            .placeholders()
                            .filter(|(n, _)| !task.vars.iter().any(|(v, _)| v == n))
                            .map(|(n, _)| n.to_string())
                            .collect();
                        if let Some(name) = bad.first() {
                            self.error(
                                Diagnostic::new(format!(
                                    "`requires` may only use this task's foreach variables, not `{{{{{name}}}}}`"
                                ))
                                .at(req.span())
                                .help("the graph must not depend on params, so it can be checked before a run"),
                            );
                            continue;
                        }
                        t.render(|n| task.vars.iter().find(|(v, _)| v == n).map(|(_, x)| x.as_str()))
                    }
                    Err(e) => {
                        self.error(Diagnostic::new(format!("in `requires`: {}", e.message)).at(req.span()));
                        continue;
                    }
                };
                if let Some(&i) = index.get(&text) {
                    deps.push((i, req.span()));
                } else if let Some(all) = by_name.get(&text) {
                    deps.extend(all.iter().map(|&i| (i, req.span())));
                } else {
                    let base = text.split('[').next().unwrap_or(&text);
                    let d = Diagnostic::new(format!(
                        "task `{}` requires `{text}`, which is not a task in this pipeline",
                        task.id
                    ))
                    .at(req.span());
                    let d = if by_name.contains_key(base) {
                        d.help(format!("`{base}` has no instance `{text}`"))
                    } else {
                        match did_you_mean(base, by_name.keys().map(String::as_str)) {
                            Some(s) => d.label(format!("did you mean `{s}`?")),
                            None => d,
                        }
                    };
                    self.error(d);
                }
            }
            deps.sort_by_key(|(i, _)| *i);
            deps.dedup_by_key(|(i, _)| *i);
            out.push(deps);
        }
        out
    }

    pub(super) fn cycle_error(
        &mut self,
        cycle: &[usize],
        tasks: &[Task],
        deps: &[Vec<(usize, Range<usize>)>],
        defs: &[(Range<usize>, Vec<Spanned<String>>)],
    ) {
        let names: Vec<&str> = cycle.iter().map(|&i| tasks[i].id.as_str()).collect();
        let mut path = names.join(" -> ");
        path.push_str(" -> ");
        path.push_str(names[0]);
        // Point at the `requires` entry of the first task that leads to the next one.
        let next = cycle[1 % cycle.len()];
        let span = deps[cycle[0]]
            .iter()
            .find(|(d, _)| *d == next)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| defs[tasks[cycle[0]].def].0.clone());
        let d = Diagnostic::new(format!("dependency cycle: {path}"))
            .at(span)
            .label(format!("`{}` requires `{}` here", names[0], tasks[next].id))
            .help("each task on the cycle waits for the next; remove one of these `requires`");
        self.error(d);
    }
}

/// The value of the TOML string written as `raw` (quotes included), with the offset in `raw` that
/// each of its bytes comes from (an escape's bytes all come from its backslash).
fn value_offsets(raw: &str) -> Option<(String, Vec<usize>)> {
    let (quote, basic) = match raw.as_bytes().first()? {
        b'"' => (if raw.starts_with("\"\"\"") { 3 } else { 1 }, true),
        b'\'' => (if raw.starts_with("'''") { 3 } else { 1 }, false),
        _ => return None,
    };
    let body = raw.get(quote..raw.len().checked_sub(quote)?)?;
    let mut value = String::new();
    let mut at = Vec::new();
    let mut push = |value: &mut String, c: char, from: usize| {
        value.push(c);
        at.extend(std::iter::repeat_n(quote + from, c.len_utf8()));
    };
    let mut chars = body.char_indices().peekable();
    // A multi-line string drops a newline right after its opening quotes.
    if quote == 3 {
        if body.starts_with("\r\n") {
            chars.next();
            chars.next();
        } else if body.starts_with('\n') {
            chars.next();
        }
    }
    while let Some((i, c)) = chars.next() {
        if !(basic && c == '\\') {
            push(&mut value, c, i);
            continue;
        }
        let (_, e) = chars.next()?;
        let mut hex = |n: usize| {
            let digits: String = (0..n).filter_map(|_| chars.next().map(|(_, d)| d)).collect();
            u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32)
        };
        let decoded = match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'e' => '\u{1b}',
            '"' => '"',
            '\\' => '\\',
            'x' => hex(2)?,
            'u' => hex(4)?,
            'U' => hex(8)?,
            // A line-ending backslash drops the whitespace and newlines after it.
            ws if ws.is_whitespace() => {
                while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                    chars.next();
                }
                continue;
            }
            _ => return None,
        };
        push(&mut value, decoded, i);
    }
    Some((value, at))
}

/// The error for a placeholder that cannot stand where it was written, with what to write instead.
fn refusal(r: &Refusal, key: &str, what: &str, vars: &[(String, Vec<String>)]) -> Diagnostic {
    let ph = format!("`{{{{{}}}}}` in `{key}` of {what}", r.name);
    let var = env_var(&r.name, vars.iter().any(|(v, _)| *v == r.name));
    let (message, help) = match &r.why {
        Why::AfterBackslash => (
            format!("{ph} follows a backslash, which would apply to the value's first character"),
            "remove the backslash (the value reaches the command as it is), or double it for a literal backslash"
                .to_string(),
        ),
        Why::AfterDollar => (
            format!("{ph} follows a `$`, which would join with it"),
            "write \\$ for a literal dollar sign".to_string(),
        ),
        Why::DollarSingle => (
            format!("{ph} stands inside $'...', where the shell expands nothing"),
            format!("end the $'...' string before the placeholder: $'...'\"{{{{{}}}}}\"$'...'", r.name),
        ),
        Why::QuotedHeredoc => (
            format!("{ph} stands in a here-document whose delimiter is quoted, so the shell leaves its body as written"),
            "unquote the delimiter (<<EOF), and write \\$, \\` and \\\\ where the body means them literally".to_string(),
        ),
        Why::HeredocDelimiter => (
            format!("{ph} is part of a here-document delimiter"),
            "a delimiter must be fixed text".to_string(),
        ),
        Why::Arithmetic => (
            format!(
                "{ph} stands inside $((...)), where the shell evaluates the text as an expression (bash even runs commands named in it)"
            ),
            format!("check that the value is a number first: n=\"${var}\"; case $n in ''|*[!0-9]*) exit 2;; esac; echo $((n + 1))"),
        ),
        Why::Evaluated => (
            format!(
                "{ph} stands in a ${{x:offset}} or an array subscript ${{a[i]}}, which bash evaluates as an arithmetic expression (and runs commands named in it)"
            ),
            format!("check that the value is a number first: n=\"${var}\"; case $n in ''|*[!0-9]*) exit 2;; esac; echo \"${{x:n}}\""),
        ),
        Why::Code(i) if i.lang == Lang::Ssh => (
            if i.stdin {
                format!("{ph} is inside the commands that `ssh` sends to the remote shell")
            } else {
                format!("{ph} is inside the command that `ssh` hands to the remote shell")
            },
            format!(
                "that shell parses the text, and no quoting by plumb makes a value safe there; send the value as data on standard input instead: printf '%s' \"${var}\" | ssh HOST 'v=$(cat); ... \"$v\" ...'"
            ),
        ),
        Why::Code(i) => {
            let message = match (i.stdin, i.lang) {
                (true, _) => format!("{ph} is inside code that `{}` reads on its standard input", i.shown),
                (false, Lang::Awk) => format!("{ph} is inside the program that `{}` runs", i.shown),
                (false, _) => format!("{ph} is inside code that `{}` runs", i.shown),
            };
            let form = i.lang.env_form(&var);
            let help = match (i.lang, i.stdin) {
                (Lang::Shell, false) if i.shown.starts_with("env ") => format!(
                    "`{}` splits its string into a command line, so a value there is parsed as words and code: drop -S and write the command's words after env, the placeholder as an argument of its own",
                    i.shown
                ),
                (Lang::Shell, false) => format!(
                    "plumb cannot quote for another interpreter: read the value from the environment there, inside single quotes so that only `{}` expands it: '... {form} ...'",
                    i.shown
                ),
                (Lang::Shell, true) => format!(
                    "plumb cannot quote for another interpreter: read the value from the environment there as {form}, and quote the here-document's delimiter (<<'EOF') so that only `{}` expands it",
                    i.shown
                ),
                _ => format!("plumb cannot quote for another interpreter: read the value from the environment there: {form}"),
            };
            (message, help)
        }
    };
    Diagnostic::new(message).help(help)
}

/// Every combination of `foreach` values, keys in declaration order; one empty combination for
/// a task without `foreach`.
pub(super) fn cross_product(vars: &[(String, Vec<String>)]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (name, values) in vars {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for combo in &out {
            for v in values {
                let mut c = combo.clone();
                c.push((name.clone(), v.clone()));
                next.push(c);
            }
        }
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::diag::FileDiagnostics;
    use crate::pipeline::Pipeline;
    use crate::spec::ProjectFile;

    #[test]
    fn cross_product_in_declaration_order() {
        let vars = vec![
            ("a".to_string(), vec!["1".to_string(), "2".to_string()]),
            ("b".to_string(), vec!["x".to_string(), "y".to_string()]),
        ];
        let ids: Vec<String> = cross_product(&vars)
            .iter()
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        assert_eq!(ids, vec!["a=1,b=x", "a=1,b=y", "a=2,b=x", "a=2,b=y"]);
        assert_eq!(cross_product(&[]), vec![Vec::<(String, String)>::new()]);
    }

    fn load(text: &str) -> Result<Pipeline, Box<FileDiagnostics>> {
        Pipeline::from_text(
            Path::new("/p/x.toml"),
            Path::new("x.toml"),
            text.to_string(),
            &ProjectFile::default(),
        )
    }

    #[test]
    fn foreach_expands_and_base_name_requires_every_instance() {
        let p = load(
            "[tasks.split]\ncommand = 'true'\n[tasks.copy]\nforeach = { shard = ['0', '1'], kind = [1, 2] }\ncommand = 'c {{shard}} {{kind}}'\nrequires = ['split']\n[tasks.load]\ncommand = 'l'\nrequires = ['copy']\n",
        )
        .unwrap();
        let ids: Vec<&str> = p.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "split",
                "copy[shard=0,kind=1]",
                "copy[shard=0,kind=2]",
                "copy[shard=1,kind=1]",
                "copy[shard=1,kind=2]",
                "load"
            ]
        );
        assert_eq!(p.graph.deps(5).len(), 4);
        assert_eq!(p.graph.deps(2), &[0]);
    }

    #[test]
    fn foreach_instances_can_require_their_matching_instance() {
        let p = load(
            "[tasks.e]\nforeach = { s = ['a', 'b'] }\ncommand = 'e {{s}}'\n[tasks.t]\nforeach = { s = ['a', 'b'] }\ncommand = 't'\nrequires = ['e[s={{s}}]']\n",
        )
        .unwrap();
        assert_eq!(p.graph.deps(p.index["t[s=b]"]), &[p.index["e[s=b]"] as u32]);
    }

    #[test]
    fn string_values_map_back_to_their_source_through_escapes() {
        let offsets = |raw: &str| value_offsets(raw).expect("a TOML string");
        let (v, at) = offsets(r#""a\"b\n{{v}}""#);
        assert_eq!(v, "a\"b\n{{v}}");
        // `{{` of the value comes from byte 7 of the source.
        assert_eq!(at[v.find("{{").unwrap()], 7);
        let (v, at) = offsets("'''\nx {{v}}'''");
        assert_eq!((v.as_str(), at[2]), ("x {{v}}", 6));
        // A line-ending backslash, and a \u escape after the placeholder.
        let (v, at) = offsets("\"\"\"\na \\\n   {{v}}\\u00e9\"\"\"");
        assert_eq!(v, "a {{v}}\u{e9}");
        assert_eq!(at[2], 11);
        assert_eq!(offsets(r"'c:\x'").0, r"c:\x");
        assert!(value_offsets(r#""\q""#).is_none());
    }

    #[test]
    fn defaults_apply_and_tasks_override() {
        let p = load(
            "[defaults]\nretries = 2\ntimeout = '1h'\n[tasks.a]\ncommand = 'x'\n[tasks.b]\ncommand = 'y'\nretries = 0\ntimeout = '5m'\n",
        )
        .unwrap();
        assert_eq!(p.defs[0].retries, 2);
        assert_eq!(p.defs[0].timeout, Some(Duration::from_secs(3600)));
        assert_eq!(p.defs[1].retries, 0);
        assert_eq!(p.defs[1].timeout, Some(Duration::from_secs(300)));
        assert_eq!(p.defs[1].retry_delay, Duration::from_secs(10));
        assert_eq!(p.defs[1].grace, Duration::from_secs(10));
    }
}
