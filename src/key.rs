//! The instance key: the text that names one set of param values, and by which markers, locks,
//! runs and attempts are keyed.
//!
//! The key is `name=value` pairs in declaration order, separated by one space. A value made only of
//! letters, digits and `-_./:+@,%=` is written bare; any other value (empty, or holding a space, a
//! quote, a backslash, a control character...) is written as a JSON string. A bare value never
//! starts with `"` and never holds a space, and param names cannot hold `=` or a space, so the key
//! reads back to exactly one list of pairs: two different sets of values are always two keys.
//! Everyday values (`date=2026-11-20 region=eu`) look as they always did.

/// The key of `params`, in the order given.
pub fn encode(params: &[(String, String)]) -> String {
    let mut key = String::new();
    for (name, value) in params {
        if !key.is_empty() {
            key.push(' ');
        }
        key.push_str(name);
        key.push('=');
        if is_bare(value) {
            key.push_str(value);
        } else {
            key.push_str(&serde_json::Value::String(value.clone()).to_string());
        }
    }
    key
}

fn is_bare(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./:+@,%=".contains(c))
}

/// The key an earlier plumb wrote for `params` (pairs joined by spaces, values unescaped), when
/// its order of names is known only from that key: `legacy` is that old key, `params` the run's
/// values in any order. Returns the pairs in the key's order, or `None` when `legacy` cannot be
/// read as those pairs.
pub fn legacy_order(legacy: &str, params: &[(String, String)]) -> Option<Vec<(String, String)>> {
    fn walk(rest: &str, left: &mut Vec<(String, String)>, out: &mut Vec<(String, String)>) -> bool {
        if left.is_empty() {
            return rest.is_empty();
        }
        for i in 0..left.len() {
            let (name, value) = &left[i];
            let pair = format!("{name}={value}");
            let Some(after) = rest.strip_prefix(pair.as_str()) else {
                continue;
            };
            let after = if left.len() == 1 {
                after
            } else if let Some(a) = after.strip_prefix(' ') {
                a
            } else {
                continue;
            };
            let taken = left.remove(i);
            out.push(taken);
            if walk(after, left, out) {
                return true;
            }
            let taken = out.pop().expect("just pushed");
            left.insert(i, taken);
        }
        false
    }
    let mut left = params.to_vec();
    let mut out = Vec::with_capacity(params.len());
    walk(legacy, &mut left, &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn everyday_values_read_as_before() {
        assert_eq!(
            encode(&pairs(&[("date", "2026-11-20"), ("region", "eu")])),
            "date=2026-11-20 region=eu"
        );
        assert_eq!(
            encode(&pairs(&[("hour", "2026-11-20T02:00+01:00"), ("n", "a=b")])),
            "hour=2026-11-20T02:00+01:00 n=a=b"
        );
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn values_that_could_run_together_are_quoted() {
        assert_eq!(encode(&pairs(&[("a", "x b=y"), ("b", "z")])), r#"a="x b=y" b=z"#);
        assert_eq!(encode(&pairs(&[("a", "x"), ("b", "y b=z")])), r#"a=x b="y b=z""#);
        assert_eq!(encode(&pairs(&[("a", "")])), r#"a="""#);
        assert_eq!(
            encode(&pairs(&[("a", "say \"hi\"\n\\")])),
            r#"a="say \"hi\"\n\\""#
        );
        assert_eq!(encode(&pairs(&[("a", "\"x\"")])), r#"a="\"x\"""#);
    }

    #[test]
    fn different_values_never_share_a_key() {
        let values = [
            "",
            " ",
            "x",
            "x b=y",
            "\"x\"",
            "x\"",
            "\\",
            "\\\"",
            "a b",
            "a  b",
            "\n",
            "\\n",
            "=",
            "\u{0}",
            "é",
            "x y=\"z\"",
        ];
        let mut seen = std::collections::HashMap::new();
        for a in values {
            for b in values {
                let key = encode(&pairs(&[("a", a), ("b", b)]));
                if let Some(prev) = seen.insert(key.clone(), (a, b)) {
                    panic!("{prev:?} and {:?} share the key {key}", (a, b));
                }
            }
        }
    }

    #[test]
    fn the_order_of_a_legacy_key_is_recovered_from_its_values() {
        let sorted = pairs(&[("a", "x b=y"), ("b", "z")]);
        assert_eq!(
            legacy_order("a=x b=y b=z", &sorted),
            Some(pairs(&[("a", "x b=y"), ("b", "z")]))
        );
        let other = pairs(&[("a", "x"), ("b", "y b=z")]);
        assert_eq!(legacy_order("a=x b=y b=z", &other), Some(other.clone()));
        // Declared b before a: the JSON of the run lists them sorted, the key does not.
        assert_eq!(
            legacy_order("b=z a=", &pairs(&[("a", ""), ("b", "z")])),
            Some(pairs(&[("b", "z"), ("a", "")]))
        );
        assert_eq!(legacy_order("", &[]), Some(vec![]));
        assert_eq!(legacy_order("a=1", &pairs(&[("a", "2")])), None);
    }
}
