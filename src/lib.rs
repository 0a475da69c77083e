//! shmpipe: bounded lock-free queues in POSIX shared memory ([`shm_queue`]) and a runtime that
//! starts stage processes which attach to them ([`runtime`]).
pub use runtime;
pub use shm_queue;
