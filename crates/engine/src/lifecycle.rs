//! What every transport's life shares.

/// Waits on `notify` until `done()` holds. The notification is armed before each check, so one sent
/// between the check and the wait is not missed (the pattern every "stopped"/"room" wait needs).
pub(crate) async fn wait_until(notify: &tokio::sync::Notify, mut done: impl FnMut() -> bool) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if done() {
            return;
        }
        notified.await;
    }
}
