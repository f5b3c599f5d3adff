//! The shared vocabulary of the app's interface: the execution [`Mode`], the app [`Route`]s
//! (template, method, path, CLI name), how a request line maps onto a route ([`parse`]), and
//! the order statuses. The daemon, the load generator, the scenario and the tests all speak
//! it, so a new route is added here and in `serve::handlers`, nowhere else.

use std::fmt;
use std::str::FromStr;

/// The two execution modes, as named in config, metrics labels, headers and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A pool of OS threads, each running a request start to finish with the blocking driver.
    Sync,
    /// A tokio runtime running requests as tasks with the async driver.
    Async,
}

impl Mode {
    /// Both modes, sync first.
    pub const ALL: [Mode; 2] = [Mode::Sync, Mode::Async];

    /// The name used everywhere: `sync` or `async`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(Mode::Sync),
            "async" => Ok(Mode::Async),
            other => Err(format!(
                "unknown mode {other:?}: expected \"sync\" or \"async\""
            )),
        }
    }
}

/// An app route. Its template is the `route` metric label and the span name; its name is
/// what `reclaimd load --mix` and reports call it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// `GET /api/users/{id}`: the quick request.
    User,
    /// `GET /api/users/{id}/report`: the long request.
    Report,
    /// `POST /api/orders`: a write.
    Order,
}

/// The `route` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Values of an order's `status`.
pub const ORDER_STATUSES: [&str; 4] = ["paid", "pending", "shipped", "refunded"];

impl Route {
    /// Every route, in label order.
    pub const ALL: [Route; 3] = [Route::User, Route::Report, Route::Order];

    /// The short name: `user`, `report`, `order`.
    pub fn name(self) -> &'static str {
        match self {
            Route::User => "user",
            Route::Report => "report",
            Route::Order => "order",
        }
    }

    /// The route template: the only values of the `route` label besides [`UNMATCHED`].
    pub fn template(self) -> &'static str {
        match self {
            Route::User => "/api/users/{id}",
            Route::Report => "/api/users/{id}/report",
            Route::Order => "/api/orders",
        }
    }

    /// The one method the route answers.
    pub fn method(self) -> &'static str {
        match self {
            Route::User | Route::Report => "GET",
            Route::Order => "POST",
        }
    }

    /// The request path for `user_id` (the order route carries the user in its body).
    pub fn path(self, user_id: i64) -> String {
        match self {
            Route::User => format!("/api/users/{user_id}"),
            Route::Report => format!("/api/users/{user_id}/report"),
            Route::Order => "/api/orders".to_string(),
        }
    }

    /// Whether the route reads a request body.
    pub fn has_body(self) -> bool {
        self == Route::Order
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Route {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Route::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown route {s:?}: expected user, report or order"))
    }
}

/// A request matched to a route, with what its path carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `GET /api/users/{id}`.
    User(i64),
    /// `GET /api/users/{id}/report`.
    Report(i64),
    /// `POST /api/orders` (the user is in the body).
    Order,
}

impl Call {
    /// The route this call is on.
    pub fn route(self) -> Route {
        match self {
            Call::User(_) => Route::User,
            Call::Report(_) => Route::Report,
            Call::Order => Route::Order,
        }
    }
}

/// Why a request line matched no call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoMatch {
    /// No route has this path.
    NotFound,
    /// The path is a route's, the method is not.
    Method(Route),
    /// The path is a route's, but its user id is not a positive integer (at most 40
    /// characters of it are kept).
    BadId(Route, String),
}

impl NoMatch {
    /// The `route` label the request is counted under.
    pub fn label(&self) -> &'static str {
        match self {
            NoMatch::NotFound => UNMATCHED,
            NoMatch::Method(r) | NoMatch::BadId(r, _) => r.template(),
        }
    }
}

/// Matches a method and path to a call.
pub fn parse(method: &str, path: &str) -> Result<Call, NoMatch> {
    let mut segments = path.trim_end_matches('/').split('/');
    let parts: [Option<&str>; 6] = std::array::from_fn(|_| segments.next());
    let (route, id) = match parts {
        [Some(""), Some("api"), Some("users"), Some(id), None, None] => (Route::User, Some(id)),
        [Some(""), Some("api"), Some("users"), Some(id), Some("report"), None] => {
            (Route::Report, Some(id))
        }
        [Some(""), Some("api"), Some("orders"), None, None, None] => (Route::Order, None),
        _ => return Err(NoMatch::NotFound),
    };
    if method != route.method() {
        return Err(NoMatch::Method(route));
    }
    let id = match id {
        None => return Ok(Call::Order),
        Some(id) => match id.parse::<i64>() {
            Ok(n) if n > 0 => n,
            _ => return Err(NoMatch::BadId(route, id.chars().take(40).collect())),
        },
    };
    Ok(match route {
        Route::User => Call::User(id),
        _ => Call::Report(id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_built_for_a_route_parse_back_to_it() {
        for route in Route::ALL {
            let call = parse(route.method(), &route.path(7)).unwrap();
            assert_eq!(call.route(), route);
            assert_eq!(route.name().parse::<Route>(), Ok(route));
        }
        assert_eq!(parse("GET", "/api/users/7"), Ok(Call::User(7)));
        assert_eq!(parse("GET", "/api/users/7/report/"), Ok(Call::Report(7)));
        assert_eq!(parse("POST", "/api/orders"), Ok(Call::Order));
    }

    #[test]
    fn mismatches_say_why_and_keep_a_bounded_label() {
        assert_eq!(parse("GET", "/nope"), Err(NoMatch::NotFound));
        assert_eq!(
            parse("GET", "/api/users/1/report/x"),
            Err(NoMatch::NotFound)
        );
        assert_eq!(parse("GET", "/api/users"), Err(NoMatch::NotFound));
        assert_eq!(
            parse("DELETE", "/api/users/1"),
            Err(NoMatch::Method(Route::User))
        );
        assert_eq!(
            parse("GET", "/api/users/abc"),
            Err(NoMatch::BadId(Route::User, "abc".into()))
        );
        assert_eq!(
            parse("GET", "/api/users/-1/report").map_err(|e| e.label()),
            Err("/api/users/{id}/report")
        );
        let long = "9".repeat(100);
        let Err(NoMatch::BadId(_, kept)) = parse("GET", &format!("/api/users/{long}")) else {
            panic!("an id that overflows i64 is a bad id");
        };
        assert_eq!(kept.len(), 40);
        assert!("quick".parse::<Route>().unwrap_err().contains("quick"));
        assert_eq!("sync".parse::<Mode>(), Ok(Mode::Sync));
        assert!("turbo".parse::<Mode>().is_err());
    }
}
