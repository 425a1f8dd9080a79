//! Example mini-app: a small shop. `/shop` (or opening the app) answers with a card of products,
//! each with a Buy button. A press asks the user to pay (`payments::request`, keyed by the card,
//! the buyer and the product, so a double tap is one order) and remembers which product the
//! request is for. When the user confirms, the app gets a `payment` event and posts a receipt;
//! when they decline (or the request expires), it says so. The shop's developer refunds an
//! order with `/shop refund REQUEST [AMOUNT-IN-CENTS]` (the whole order without an amount).

use minihost_sdk::storage::Bucket;
use minihost_sdk::{
    Action, App, Card, Command, Content, Context, Error, PaymentStatus, PaymentUpdate, Reply,
    Result, log, messaging, payments, storage,
};

/// The app.
pub struct Shop;

/// A product: (id, name, price in euro cents).
pub const PRODUCTS: &[(&str, &str, u64)] = &[
    ("sencha", "Sencha, 100 g", 650),
    ("oolong", "Oolong, 100 g", 890),
    ("matcha", "Matcha, 30 g", 1_450),
];

/// The currency of the prices.
pub const CURRENCY: &str = "EUR";

/// `cents` written as euros, e.g. `€6.50`.
pub fn euros(cents: u64) -> String {
    format!("€{}.{:02}", cents / 100, cents % 100)
}

/// The products card.
pub fn products() -> Content {
    let mut card = Card::builder().text("Tea Shop: what would you like?");
    for (id, name, price) in PRODUCTS {
        card = card
            .divider()
            .text(format!("{name} — {}", euros(*price)))
            .button(*id, format!("Buy {name}"), *id);
    }
    // In a group, anyone can take the shop to their own app panel.
    card.divider()
        .panel_button("Open the shop in my apps")
        .content()
}

/// The storage key remembering what payment request `request` is for.
fn order_key(request: &str) -> String {
    format!("order:{request}")
}

impl App for Shop {
    fn on_command(ctx: &Context, command: Command) -> Result<Reply> {
        if command.name != "shop" {
            return Ok(None);
        }
        let mut words = command.args.split_whitespace();
        match words.next() {
            None => Ok(Some(products())),
            Some("refund") => refund(ctx, words.next(), words.next()),
            Some(other) => Err(Error::invalid(format!(
                "unknown `/shop {other}`; try /shop or /shop refund REQUEST [CENTS]"
            ))),
        }
    }

    fn on_opened(_ctx: &Context) -> Result<Reply> {
        Ok(Some(products()))
    }

    fn on_action(ctx: &Context, action: Action) -> Result<Reply> {
        let Some((id, name, price)) = PRODUCTS.iter().find(|(id, _, _)| *id == action.id) else {
            return Err(Error::invalid(format!("no product `{}`", action.id)));
        };
        let order = payments::Order {
            amount: *price,
            currency: CURRENCY.to_owned(),
            description: (*name).to_owned(),
            // One order per card, buyer and product: tapping Buy twice asks once.
            idempotency_key: format!("{}:{}:{id}", action.message, ctx.user),
        };
        let request = payments::request(&order)?;
        storage::set(Bucket::Shared, &order_key(&request), name.as_bytes())?;
        log::info(&format!(
            "asked {} for {} ({request})",
            ctx.user,
            euros(*price)
        ));
        Ok(Some(Content::text(format!(
            "{name}: {} — please confirm the payment.",
            euros(*price)
        ))))
    }

    fn on_payment(ctx: &Context, update: PaymentUpdate) -> Result<Reply> {
        let product = storage::get_string(Bucket::Shared, &order_key(&update.request))?
            .unwrap_or_else(|| "your order".to_owned());
        let text = match update.status {
            PaymentStatus::Confirmed => {
                let receipt = Card::builder()
                    .text("Receipt")
                    .divider()
                    .text(format!("{product} — paid"))
                    .text(format!("Payment {}", update.request))
                    .text("Thank you for shopping with us!")
                    .content();
                messaging::reply(ctx, &receipt)?;
                return Ok(None);
            }
            PaymentStatus::Declined => format!("No payment for {product}: nothing was charged."),
            PaymentStatus::Expired => {
                format!("The payment for {product} was not confirmed in time: nothing was charged.")
            }
            PaymentStatus::PartiallyRefunded => format!(
                "{product}: {} of {} was refunded.",
                euros(update.refunded),
                euros(update.amount)
            ),
            PaymentStatus::Refunded => format!("{product}: your money was refunded."),
        };
        Ok(Some(Content::text(text)))
    }
}

/// `/shop refund REQUEST [CENTS]`: the developer gives (part of) a paid order back. The same
/// command twice is one refund (the key names the request and the amount).
fn refund(ctx: &Context, request: Option<&str>, cents: Option<&str>) -> Result<Reply> {
    if !ctx.developer {
        return Err(Error::invalid(
            "only the shop's developer can refund orders",
        ));
    }
    let Some(request) = request else {
        return Err(Error::invalid("usage: /shop refund REQUEST [CENTS]"));
    };
    let product = storage::get_string(Bucket::Shared, &order_key(request))?
        .ok_or_else(|| Error::invalid(format!("no order `{request}` in this shop")))?;
    let amount = match cents {
        Some(c) => c
            .parse::<u64>()
            .map_err(|_| Error::invalid(format!("`{c}` is not an amount in cents")))?,
        None => PRODUCTS
            .iter()
            .find(|(_, name, _)| *name == product)
            .map(|(_, _, price)| *price)
            .ok_or_else(|| Error::invalid(format!("no price for `{product}`")))?,
    };
    let refund = payments::refund(request, amount, &format!("dev:{request}:{amount}"))?;
    log::info(&format!(
        "refunded {} of {request} ({refund})",
        euros(amount)
    ));
    Ok(Some(Content::text(format!(
        "Refunded {} for {product}.",
        euros(amount)
    ))))
}

minihost_sdk::export_app!(Shop);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_has_a_buy_button_with_its_price() {
        let Content::Card(card) = products() else {
            panic!("not a card")
        };
        let ids: Vec<&str> = card.buttons().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["sencha", "oolong", "matcha", "open-panel"]);
        assert_eq!(euros(650), "€6.50");
        assert_eq!(euros(1_450), "€14.50");
        assert_eq!(euros(5), "€0.05");
    }
}
