//! Event time: reading timestamps from field values and text.
//!
//! RFC 3339 with any offset; date-times without offset in a configured zone; epoch seconds,
//! milliseconds, microseconds or nanoseconds as numbers or numeric strings (told apart by
//! magnitude); GCP/protobuf `{"seconds":…, "nanos":…}` objects.
