pub mod check;
pub mod test;
