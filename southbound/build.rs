fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/switchyard.proto");
    tonic_prost_build::configure()
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        // Rows written by an older version lack newer fields: read them as defaults.
        .message_attribute(".", "#[serde(default)]")
        .compile_protos(&["proto/switchyard.proto"], &["proto"])?;
    Ok(())
}
