//! Scopes as tokens and grants carry them: [`ScopeSet`], serialized as the space-separated
//! `scope` claim (RFC 9068), over the one [`Scope`] enum of `minihost-core`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

pub use minihost_core::scope::{Scope, UnknownScope};

/// A set of scopes; its text form is the names in a fixed order separated by single spaces
/// (`messages.send storage`), as in the OAuth `scope` parameter and claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// The empty set.
    pub fn new() -> ScopeSet {
        ScopeSet(BTreeSet::new())
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) {
        self.0.insert(scope);
    }

    /// Removes a scope.
    pub fn remove(&mut self, scope: Scope) {
        self.0.remove(&scope);
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes in both sets.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.intersection(&other.0).copied().collect())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for ScopeSet {
    type Err = UnknownScope;

    /// Parses the space-separated form; repeated names collapse, any unknown name fails.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(' ')
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_sets_round_trip_through_their_text_form() {
        let set: ScopeSet = "storage messages.send storage".parse().unwrap();
        assert_eq!(set.to_string(), "messages.send storage");
        assert!(set.contains(Scope::Storage) && !set.contains(Scope::ProfileRead));
        assert!("storage admin".parse::<ScopeSet>().is_err());
        assert!("".parse::<ScopeSet>().unwrap().is_empty());
    }
}
