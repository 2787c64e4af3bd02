//! Prometheus text exposition (format 0.0.4) for vswitchd and northd, and the tiny
//! HTTP endpoint that serves it. Names follow Prometheus conventions:
//! `switchyard_<component>_<what>_<unit>`, counters end in `_total`.

use std::fmt::Write;

/// A metrics page under construction.
#[derive(Debug, Default)]
pub struct Page {
    text: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Page {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        self
    }
    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {value}");
        } else {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(self.text, "{name}{{{}}} {value}", l.join(","));
        }
        self
    }
    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }
    pub fn into_string(self) -> String {
        self.text
    }
}

/// The HTTP response for a request line: the page for `GET /metrics`, 404 otherwise.
pub fn http_response(request: &str, page: impl FnOnce() -> String) -> String {
    let first = request.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
        let body = page();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        let body = "only GET /metrics is served here\n";
        format!(
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_and_http() {
        let mut p = Page::default();
        p.family("switchyard_x_total", "counter", "Things.").sample(
            "switchyard_x_total",
            &[("reason", "a\"b")],
            3.0,
        );
        let s = p.into_string();
        assert!(s.contains("# TYPE switchyard_x_total counter\n"));
        assert!(s.contains("switchyard_x_total{reason=\"a\\\"b\"} 3\n"));
        assert!(http_response("GET /metrics HTTP/1.1\r\n", || "x".into())
            .starts_with("HTTP/1.1 200 OK"));
        assert!(http_response("GET / HTTP/1.1\r\n", || "x".into()).starts_with("HTTP/1.1 404"));
    }
}
