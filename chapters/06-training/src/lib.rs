//! # Chapter 06: training
//!
//! Everything between a model and a trained model: optimisers that turn
//! gradients into updates, schedules for the learning rate, gradient
//! clipping, data sets and loaders, the training loop, checkpoints that
//! resume exactly, and metrics with a dashboard.

pub mod checkpoint;
pub mod clip;
pub mod dashboard;
pub mod data;
pub mod data_parallel;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod run_dir;
pub mod schedule;
pub mod trainer;

pub use checkpoint::Checkpoint;
pub use clip::{clip_grad_norm_, clip_grad_value_, grad_norm};
pub use data_parallel::{default_replicas, DataParallel, ShardedStep, MAX_REPLICAS};
pub use models::Mlp;
pub use optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, Optimizer, OptimizerState, ParamGroup,
    RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
pub use run_dir::{OnResume, RunConfig, RunError, RunLock, RunSession};
pub use schedule::{
    Anneal, ConstantLr, CosineAnnealingLr, ExponentialLr, LinearLr, LrSchedule, MultiStepLr,
    OneCycleLr, Scheduler, SequentialLr, StepLr,
};
pub use trainer::{
    evaluate, fit, ActivationProbe, OptimizerKind, RunDir, ScheduleKind, TrainConfig, TrainSummary,
};
