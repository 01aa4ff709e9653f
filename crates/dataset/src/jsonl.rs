//! JSON Lines: one [`OpportunityRecord`] per line. The reader holds one line
//! at a time, so files of any size stream in bounded memory.

use std::borrow::Borrow;
use std::fmt;
use std::io::{BufRead, Read, Write};

use crate::error::{Error, Result};
use crate::record::OpportunityRecord;

/// Longest line the reader accepts; a longer one is reported and skipped so a
/// file without newlines cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A row that could not be read. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for RowError {}

/// Streams records from JSON Lines. Blank lines are skipped; a bad line
/// yields a [`RowError`] and reading goes on with the next line. An I/O error
/// is yielded once and ends the stream.
pub fn read_jsonl<R: BufRead>(reader: R) -> JsonlReader<R> {
    JsonlReader { reader, line_number: 0, buffer: Vec::new(), finished: false }
}

/// Iterator returned by [`read_jsonl`].
pub struct JsonlReader<R> {
    reader: R,
    line_number: u64,
    buffer: Vec<u8>,
    finished: bool,
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads the next line into `buffer`; false at end of input.
    fn next_line(&mut self) -> std::io::Result<LineRead> {
        self.buffer.clear();
        let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX) + 1;
        let read = (&mut self.reader).take(limit).read_until(b'\n', &mut self.buffer)?;
        if read == 0 {
            return Ok(LineRead::End);
        }
        self.line_number += 1;
        if self.buffer.len() > MAX_LINE_BYTES && self.buffer.last() != Some(&b'\n') {
            // Drain the rest of the oversized line in bounded chunks.
            loop {
                self.buffer.clear();
                let drained = (&mut self.reader).take(64 * 1024).read_until(b'\n', &mut self.buffer)?;
                if drained == 0 || self.buffer.last() == Some(&b'\n') {
                    break;
                }
            }
            self.buffer.clear();
            return Ok(LineRead::TooLong);
        }
        Ok(LineRead::Line)
    }
}

enum LineRead {
    Line,
    TooLong,
    End,
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = std::result::Result<(u64, OpportunityRecord), RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            let outcome = match self.next_line() {
                Ok(outcome) => outcome,
                Err(io_error) => {
                    self.finished = true;
                    let line = self.line_number + 1;
                    return Some(Err(RowError { line, reason: format!("read failed: {io_error}") }));
                }
            };
            let line = self.line_number;
            match outcome {
                LineRead::End => self.finished = true,
                LineRead::TooLong => {
                    let reason = format!("line longer than {MAX_LINE_BYTES} bytes");
                    return Some(Err(RowError { line, reason }));
                }
                LineRead::Line if self.buffer.trim_ascii().is_empty() => {}
                LineRead::Line => {
                    let parsed = serde_json::from_slice::<OpportunityRecord>(&self.buffer);
                    let item = parsed
                        .map(|record| (line, record))
                        .map_err(|json_error| RowError { line, reason: json_error.to_string() });
                    return Some(item);
                }
            }
        }
        None
    }
}

/// Writes one record as one line.
pub fn write_jsonl_record<W: Write>(writer: &mut W, record: &OpportunityRecord) -> Result<()> {
    let write_error = |reason: String| Error::Write { what: "jsonl record", reason };
    serde_json::to_writer(&mut *writer, record).map_err(|error| write_error(error.to_string()))?;
    writer.write_all(b"\n").map_err(|error| write_error(error.to_string()))
}

/// Writes every record, one per line; returns how many were written. Takes
/// owned or borrowed records so a simulator stream can be written directly.
pub fn write_jsonl<W, I>(writer: &mut W, records: I) -> Result<u64>
where
    W: Write,
    I: IntoIterator,
    I::Item: Borrow<OpportunityRecord>,
{
    let mut written = 0;
    for record in records {
        write_jsonl_record(writer, record.borrow())?;
        written += 1;
    }
    writer.flush().map_err(|error| Error::Write { what: "jsonl stream", reason: error.to_string() })?;
    Ok(written)
}
