//! `clos-testkit sweep`: remove leftovers of killed test runs by hand.
//! `clos-testkit hold`: create a namespace with a process inside, print its name and wait to be
//! killed; the test suite uses it to prove that a killed run's leftovers are swept.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("sweep") => {
            println!("{:?}", clos_testkit::sweep::sweep());
            ExitCode::SUCCESS
        }
        Some("hold") => match hold() {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: clos-testkit sweep | hold");
            ExitCode::from(2)
        }
    }
}

fn hold() -> clos_testkit::Result<()> {
    let ns = clos_testkit::Netns::new()?;
    let log =
        std::env::temp_dir().join(format!("{}hold.log", clos_testkit::names::scratch_prefix()));
    let mut cmd = ns.command("sleep");
    cmd.arg("600");
    let sleeper = clos_testkit::Daemon::spawn("sleep", cmd, &log)?;
    println!("{} {}", ns.name(), sleeper.pid().unwrap_or(0));
    std::thread::sleep(std::time::Duration::from_secs(600));
    Ok(())
}
