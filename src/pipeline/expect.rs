//! Checking a task's `[tasks.ID.expect.NAME]` tables: each key's value and type, their
//! defaults (DESIGN 7), and the combinations that cannot mean anything.

use std::time::Duration;

use toml::Spanned;

use super::Builder;
use crate::diag::Diagnostic;
use crate::spec::{ExpectSection, Number, RawPercent};
use crate::watch::metrics::is_metric_name;
use crate::watch::{self, Anomaly, Expectation};

impl Builder<'_> {
    /// The expectations of task `what` (`task \`load\``); `has_command` false for an external
    /// input, which measures nothing.
    pub(super) fn expectations(
        &mut self,
        raw: &[(Spanned<String>, ExpectSection)],
        what: &str,
        has_command: bool,
    ) -> Vec<Expectation> {
        let mut out = Vec::new();
        for (key, e) in raw {
            let name = key.get_ref();
            let place = format!("`expect.{name}` of {what}");
            if !has_command {
                self.error(
                    Diagnostic::new(format!("{place} needs a `command`"))
                        .at(key.span())
                        .help("a task without `command` is an external input; it runs nothing, so it records no metrics"),
                );
                continue;
            }
            if !is_metric_name(name) {
                self.error(
                    Diagnostic::new(format!("metric name `{name}` in {what} is not a metric name"))
                        .at(key.span())
                        .help("names are lowercase letters, digits and _, not starting with a digit, as the task writes them to PLUMB_METRICS"),
                );
                continue;
            }
            let min = self.finite(e.min.as_ref(), "min", &place);
            let max = self.finite(e.max.as_ref(), "max", &place);
            if let (Some(lo), Some(hi), Some(m)) = (min, max, e.max.as_ref())
                && hi < lo
            {
                self.error(
                    Diagnostic::new(format!(
                        "`max` of {place} is {}, below its `min` of {}",
                        watch::num(hi),
                        watch::num(lo)
                    ))
                    .at(m.span())
                    .help("no value could pass; swap them, or drop one"),
                );
            }
            let anomaly = match e.anomaly.as_ref() {
                None => Anomaly::Off,
                Some(a) => match a.get_ref().as_str() {
                    "off" => Anomaly::Off,
                    "warn" => Anomaly::Warn,
                    "error" => Anomaly::Error,
                    other => {
                        let d = self.choice_error("anomaly", other, a.span(), &["off", "warn", "error"]);
                        self.error(d);
                        Anomaly::Off
                    }
                },
            };
            // Tuning without `anomaly` tunes nothing. (`anomaly = "off"` keeps its tuning: that
            // is how a test is switched off for a while.)
            if e.anomaly.is_none() {
                for (k, span) in [
                    ("window", e.window.as_ref().map(|v| v.span())),
                    ("min_history", e.min_history.as_ref().map(|v| v.span())),
                    ("sensitivity", e.sensitivity.as_ref().map(|v| v.span())),
                    ("min_change", e.min_change.as_ref().map(|v| v.span())),
                ] {
                    if let Some(span) = span {
                        self.error(
                            Diagnostic::new(format!("`{k}` of {place} has no effect without `anomaly`"))
                                .at(span)
                                .help("add anomaly = \"warn\" (or \"error\") to compare the value with the task's past"),
                        );
                    }
                }
            }
            let window = match self.duration(e.window.as_ref(), "window", &format!("of {place}")) {
                Some(Duration::ZERO) => {
                    let span = e.window.as_ref().map_or(0..0, |w| w.span());
                    self.error(
                        Diagnostic::new(format!("`window` of {place} must be longer than 0s")).at(span),
                    );
                    watch::DEFAULT_WINDOW
                }
                Some(w) => w,
                None => watch::DEFAULT_WINDOW,
            };
            let min_history = match e.min_history.as_ref() {
                None => watch::DEFAULT_MIN_HISTORY,
                Some(n) => match u32::try_from(*n.get_ref()) {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        self.error(
                            Diagnostic::new(format!("`min_history` of {place} must be at least 1"))
                                .at(n.span()),
                        );
                        watch::DEFAULT_MIN_HISTORY
                    }
                },
            };
            let sensitivity = match self.finite(e.sensitivity.as_ref(), "sensitivity", &place) {
                Some(s) if s > 0.0 => s,
                Some(_) => {
                    let span = e.sensitivity.as_ref().map_or(0..0, |v| v.span());
                    self.error(
                        Diagnostic::new(format!("`sensitivity` of {place} must be more than 0"))
                            .at(span)
                            .help("it is how many spreads from the median a value may be; 3.5 is usual"),
                    );
                    watch::DEFAULT_SENSITIVITY
                }
                None => watch::DEFAULT_SENSITIVITY,
            };
            let min_change = match e.min_change.as_ref() {
                None => watch::DEFAULT_MIN_CHANGE,
                Some(c) => match percent(c.get_ref()) {
                    Ok(f) => f,
                    Err((message, help)) => {
                        self.error(
                            Diagnostic::new(format!("`min_change` of {place}: {message}"))
                                .at(c.span())
                                .help(help),
                        );
                        watch::DEFAULT_MIN_CHANGE
                    }
                },
            };
            out.push(Expectation {
                name: name.clone(),
                min,
                max,
                anomaly,
                window,
                min_history,
                sensitivity,
                min_change,
            });
        }
        out
    }

    /// A number that must be finite (TOML also writes `inf` and `nan`).
    fn finite(&mut self, v: Option<&Spanned<Number>>, key: &str, place: &str) -> Option<f64> {
        let v = v?;
        let x = v.get_ref().0;
        if x.is_finite() {
            Some(x)
        } else {
            self.error(Diagnostic::new(format!("`{key}` of {place} must be a finite number")).at(v.span()));
            None
        }
    }
}

/// `"20%"` as the fraction 0.2; a bare number is refused, as it could mean 20 % or 0.2 %.
fn percent(raw: &RawPercent) -> Result<f64, (String, String)> {
    let help = "write a percentage, like \"20%\"".to_string();
    match raw {
        RawPercent::Number(n) => Err((
            format!("{} has no unit", watch::num(*n)),
            format!(
                "write \"{}%\" for {} percent",
                watch::num(*n * 100.0),
                watch::num(*n * 100.0)
            ),
        )),
        RawPercent::Text(s) => {
            let Some(body) = s.trim().strip_suffix('%') else {
                return Err((format!("\"{s}\" is not a percentage"), help));
            };
            match body.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && p >= 0.0 && !body.trim().is_empty() => Ok(p / 100.0),
                _ => Err((format!("\"{s}\" is not a percentage of 0% or more"), help)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_the_design() {
        let p = crate::pipeline::Pipeline::from_text(
            std::path::Path::new("/p/x.toml"),
            std::path::Path::new("x.toml"),
            "[tasks.load]\ncommand = 'true'\n[tasks.load.expect.rows]\nmin = 1\nanomaly = 'warn'\n\
             [tasks.load.expect.duration_s]\nmax = 60\nanomaly = 'error'\nwindow = '7d'\nmin_history = 3\n\
             sensitivity = 5\nmin_change = '50%'\n"
                .to_string(),
            &crate::spec::ProjectFile::default(),
        )
        .unwrap_or_else(|d| panic!("{d}"));
        let e = &p.defs[0].expect;
        assert_eq!(
            e[0],
            Expectation {
                name: "rows".into(),
                min: Some(1.0),
                max: None,
                anomaly: Anomaly::Warn,
                window: Duration::from_secs(28 * 86400),
                min_history: 7,
                sensitivity: 3.5,
                min_change: 0.2,
            }
        );
        assert_eq!(
            e[1],
            Expectation {
                name: "duration_s".into(),
                min: None,
                max: Some(60.0),
                anomaly: Anomaly::Error,
                window: Duration::from_secs(7 * 86400),
                min_history: 3,
                sensitivity: 5.0,
                min_change: 0.5,
            }
        );
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(&RawPercent::Text("20%".into())), Ok(0.2));
        assert_eq!(percent(&RawPercent::Text(" 0 % ".into())), Ok(0.0));
        assert_eq!(percent(&RawPercent::Text("150%".into())), Ok(1.5));
        assert_eq!(
            percent(&RawPercent::Number(0.2)).unwrap_err(),
            (
                "0.2 has no unit".to_string(),
                "write \"20%\" for 20 percent".to_string()
            )
        );
        for bad in ["20", "-5%", "%", "inf%", "nan%", "x%"] {
            assert!(percent(&RawPercent::Text(bad.into())).is_err(), "{bad}");
        }
    }
}
