//! integration tests (to come)
