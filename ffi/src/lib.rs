//! C ABI (skeleton until its issue).
