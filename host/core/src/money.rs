//! Money: currencies (ISO 4217 codes with their minor-unit exponents), amounts in integer minor
//! units with the platform's cap, and how an amount is written for a reader. Never a float.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest amount of one order, refund or top-up, in minor units. Far below `i64::MAX`, so
/// sums of many amounts are checked but never near overflow in practice.
pub const MAX_AMOUNT: u64 = 100_000_000_000;

/// The currencies the platform accepts: (code, minor-unit exponent, symbol).
const CURRENCIES: &[(&str, u8, &str)] = &[
    ("AUD", 2, "A$"),
    ("BRL", 2, "R$"),
    ("CAD", 2, "CA$"),
    ("CHF", 2, "CHF "),
    ("CNY", 2, "¥"),
    ("EUR", 2, "€"),
    ("GBP", 2, "£"),
    ("HKD", 2, "HK$"),
    ("INR", 2, "₹"),
    ("JPY", 0, "¥"),
    ("KRW", 0, "₩"),
    ("KWD", 3, "KD "),
    ("SGD", 2, "S$"),
    ("USD", 2, "$"),
];

/// An ISO 4217 currency the platform accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
    symbol: &'static str,
}

/// Why an amount or currency is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not an ISO 4217 code the platform accepts.
    #[error("unknown currency `{0}` (use an ISO 4217 code such as EUR, USD, CNY or JPY)")]
    UnknownCurrency(String),
    /// Zero (or, where signed, negative).
    #[error("the amount must be at least one minor unit")]
    NotPositive,
    /// Above [`MAX_AMOUNT`].
    #[error("the amount is above the platform's cap of {MAX_AMOUNT} minor units")]
    OverCap,
}

impl Currency {
    /// The currency named by an ISO 4217 code (upper case).
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|&(code, exponent, symbol)| Currency {
                code,
                exponent,
                symbol,
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(16).collect()))
    }

    /// The ISO 4217 code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// `minor` minor units written for a reader in `locale` (a BCP 47 tag): the symbol, the
    /// major units grouped by thousands, and the minor digits; `1234567` EUR is `€12,345.67` in
    /// English, `12.345,67 €` in German or French, `€12,345.67` in Chinese.
    pub fn format(&self, minor: u64, locale: &str) -> String {
        let scale = 10u64.pow(u32::from(self.exponent));
        let (major, fraction) = (minor / scale, minor % scale);
        let language = locale.split(['-', '_']).next().unwrap_or("en");
        let (group, decimal, symbol_after) = match language {
            "de" | "fr" | "es" | "it" | "nl" | "pt" | "ru" => ('.', ',', true),
            _ => (',', '.', false),
        };
        let digits = major.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(group);
            }
            grouped.push(c);
        }
        if self.exponent > 0 {
            grouped.push(decimal);
            grouped.push_str(&format!(
                "{fraction:0width$}",
                width = usize::from(self.exponent)
            ));
        }
        let symbol = self.symbol.trim_end();
        if symbol_after {
            format!("{grouped} {symbol}")
        } else {
            format!("{}{grouped}", self.symbol)
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// Checks an amount of one order, refund or top-up: at least one minor unit, at most
/// [`MAX_AMOUNT`]. Returns it as the `i64` the ledger stores.
pub fn check_amount(minor: u64) -> Result<i64, MoneyError> {
    if minor == 0 {
        return Err(MoneyError::NotPositive);
    }
    if minor > MAX_AMOUNT {
        return Err(MoneyError::OverCap);
    }
    i64::try_from(minor).map_err(|_| MoneyError::OverCap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_iso_codes_with_their_exponents() {
        assert_eq!(Currency::parse("EUR").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        for bad in ["eur", "EURO", "", "XXX", "€"] {
            assert!(
                matches!(Currency::parse(bad), Err(MoneyError::UnknownCurrency(_))),
                "{bad:?}"
            );
        }
        let eur: Currency = serde_json::from_str("\"EUR\"").unwrap();
        assert_eq!(serde_json::to_string(&eur).unwrap(), "\"EUR\"");
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }

    #[test]
    fn amounts_are_positive_and_capped() {
        assert_eq!(check_amount(0), Err(MoneyError::NotPositive));
        assert_eq!(check_amount(1), Ok(1));
        assert_eq!(check_amount(MAX_AMOUNT), Ok(MAX_AMOUNT as i64));
        assert_eq!(check_amount(MAX_AMOUNT + 1), Err(MoneyError::OverCap));
        assert_eq!(check_amount(u64::MAX), Err(MoneyError::OverCap));
    }

    #[test]
    fn amounts_are_written_for_the_reader() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(eur.format(1_234_567, "en"), "€12,345.67");
        assert_eq!(eur.format(1_234_567, "de-DE"), "12.345,67 €");
        assert_eq!(eur.format(5, "en"), "€0.05");
        assert_eq!(eur.format(100, "zh-CN"), "€1.00");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.format(1500, "ja"), "¥1,500");
        let cny = Currency::parse("CNY").unwrap();
        assert_eq!(cny.format(999, "zh"), "¥9.99");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(kwd.format(1_001, "en"), "KD 1.001");
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(usd.format(100_000_000, "en"), "$1,000,000.00");
    }
}
