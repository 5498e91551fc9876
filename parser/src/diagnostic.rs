//! Diagnostics shared by every layer: parser, evaluator, plan checks.
//!
//! A [`Diagnostic`] is plain data (code, severity, message, labelled spans,
//! help). [`Diagnostic::to_report`] turns it into a `miette` report bound to
//! its source text; fancy rendering happens only in the CLI.

use serde::Serialize;

use crate::ast::Span;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Severity {
    /// The input is wrong.
    Error,
    /// The input is suspicious.
    Warning,
    /// A remark.
    Info,
}

/// A labelled span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanLabel {
    /// Where.
    pub span: Span,
    /// What to say there (may be empty).
    pub message: String,
}

/// One problem found in one source file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Stable code, e.g. `E0101`. Never reused for another meaning.
    pub code: &'static str,
    /// Error, warning or info.
    pub severity: Severity,
    /// Lowercase, no final period; names in backticks.
    pub message: String,
    /// The first label is the primary one (the offending token).
    pub labels: Vec<SpanLabel>,
    /// What to write instead, if known.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with one primary label.
    pub fn error(
        code: &'static str,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: vec![SpanLabel {
                span,
                message: label.into(),
            }],
            help: None,
        }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(SpanLabel {
            span,
            message: message.into(),
        });
        self
    }

    /// The primary span, if any.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    /// Turns the diagnostic into a `miette` report bound to its source text,
    /// so that rendering shows `name:line:col` and a code frame.
    pub fn to_report(&self, name: &str, source: &str) -> miette::Report {
        let severity = match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        };
        let labels = self.labels.iter().enumerate().map(|(i, label)| {
            let text = (!label.message.is_empty()).then(|| label.message.clone());
            let span = (label.span.start as usize, label.span.len() as usize);
            if i == 0 {
                miette::LabeledSpan::new_primary_with_span(text, span)
            } else {
                miette::LabeledSpan::new_with_span(text, span)
            }
        });
        let mut diag = miette::MietteDiagnostic::new(self.message.clone())
            .with_code(self.code)
            .with_severity(severity)
            .with_labels(labels);
        if let Some(help) = &self.help {
            diag = diag.with_help(help.clone());
        }
        miette::Report::new(diag)
            .with_source_code(miette::NamedSource::new(name, source.to_owned()))
    }
}
