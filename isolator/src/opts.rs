//! Volume options: the `k=v[,k=v…]` lists of `--volumeopts` and `DVDI_VOLUME_OPTS`.
//!
//! One parser for both front ends, with the deliberate fixes over Go dvdcli (SPEC §3): a value
//! keeps every `=` after the first one, an item without `=` after a comma continues the previous
//! value, and a first item without `=` is an error rather than a crash.

use std::collections::BTreeMap;

/// Why an option list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptsError {
    #[error("option {item:?} in {list:?} is not key=value (an item without '=' may only continue a previous value)")]
    NoKey { list: String, item: String },
    #[error("option {item:?} in {list:?} has an empty key")]
    EmptyKey { list: String, item: String },
}

/// Options sent to a plugin's `Create`, keyed and ordered by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct VolumeOpts(BTreeMap<String, String>);

impl VolumeOpts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one list (one `--volumeopts` value or one `DVDI_VOLUME_OPTS` value) into `self`.
    /// Items are split on `,` and trimmed; empty items are skipped; a later key overrides an
    /// earlier one.
    pub fn add_list(&mut self, list: &str) -> Result<(), OptsError> {
        let mut last_key: Option<String> = None;
        for raw in list.split(',') {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            match item.split_once('=') {
                Some((key, value)) => {
                    let key = key.trim();
                    if key.is_empty() {
                        return Err(OptsError::EmptyKey {
                            list: list.into(),
                            item: item.into(),
                        });
                    }
                    self.0.insert(key.to_owned(), value.trim().to_owned());
                    last_key = Some(key.to_owned());
                }
                None => {
                    let Some(value) = last_key.as_ref().and_then(|k| self.0.get_mut(k)) else {
                        return Err(OptsError::NoKey {
                            list: list.into(),
                            item: item.into(),
                        });
                    };
                    value.push(',');
                    value.push_str(item);
                }
            }
        }
        Ok(())
    }

    /// Parses several lists, as given by repeated `--volumeopts` flags.
    pub fn parse_lists<S: AsRef<str>>(lists: &[S]) -> Result<Self, OptsError> {
        let mut opts = Self::new();
        for list in lists {
            opts.add_list(list.as_ref())?;
        }
        Ok(opts)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lists: &[&str]) -> Result<Vec<(String, String)>, OptsError> {
        let opts = VolumeOpts::parse_lists(lists)?;
        Ok(opts
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn simple_and_repeated_lists() {
        assert_eq!(
            parse(&["size=5", "iops=150"]).unwrap(),
            kv(&[("iops", "150"), ("size", "5")])
        );
        assert_eq!(
            parse(&["size=5,iops=150"]).unwrap(),
            kv(&[("iops", "150"), ("size", "5")])
        );
        assert_eq!(parse(&[]).unwrap(), kv(&[]));
    }

    #[test]
    fn fix_value_keeps_second_equals() {
        assert_eq!(
            parse(&["o=addr=10.0.0.1"]).unwrap(),
            kv(&[("o", "addr=10.0.0.1")])
        );
    }

    #[test]
    fn fix_item_without_equals_continues_previous_value() {
        assert_eq!(
            parse(&["o=addr=10.0.0.1,rw"]).unwrap(),
            kv(&[("o", "addr=10.0.0.1,rw")])
        );
        assert_eq!(
            parse(&["type=nfs,o=addr=10.0.0.1,rw,nfsvers=4,device=:/export"]).unwrap(),
            kv(&[
                ("device", ":/export"),
                ("nfsvers", "4"),
                ("o", "addr=10.0.0.1,rw"),
                ("type", "nfs")
            ])
        );
    }

    #[test]
    fn fix_first_item_without_equals_is_an_error() {
        let err = parse(&["rw"]).unwrap_err();
        assert!(matches!(err, OptsError::NoKey { ref item, .. } if item == "rw"));
        assert!(err.to_string().contains("\"rw\""));
        // Continuation does not cross list boundaries.
        assert!(parse(&["a=b", "rw"]).is_err());
    }

    #[test]
    fn empty_key_is_an_error_and_empty_items_are_skipped() {
        assert!(matches!(parse(&["=x"]), Err(OptsError::EmptyKey { .. })));
        assert_eq!(
            parse(&["a=1,,b=2,"]).unwrap(),
            kv(&[("a", "1"), ("b", "2")])
        );
        assert_eq!(
            parse(&[" size = 5 , iops=150 "]).unwrap(),
            kv(&[("iops", "150"), ("size", "5")])
        );
    }

    #[test]
    fn later_key_wins_and_empty_value_is_kept() {
        assert_eq!(parse(&["a=1", "a=2"]).unwrap(), kv(&[("a", "2")]));
        assert_eq!(parse(&["a="]).unwrap(), kv(&[("a", "")]));
    }

    #[test]
    fn serializes_as_a_json_object() {
        let opts = VolumeOpts::parse_lists(&["size=5"]).unwrap();
        assert_eq!(serde_json::to_string(&opts).unwrap(), r#"{"size":"5"}"#);
        assert_eq!(serde_json::to_string(&VolumeOpts::new()).unwrap(), "{}");
    }
}
