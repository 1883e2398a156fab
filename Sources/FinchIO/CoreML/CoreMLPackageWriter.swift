import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CoreMLPackage {
    /// Writes the `.mlpackage` folder: `Manifest.json`, `Data/com.apple.CoreML/model.mlmodel` and
    /// `Data/com.apple.CoreML/weights/weight.bin`. The folder is built beside `url` under a hidden
    /// name and renamed into place, so a failure leaves nothing at `url` (an existing package there
    /// is replaced only once the new one is complete).
    public func write(to url: URL) throws {
        let fm = FileManager.default
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        func fail(_ reason: String) -> ExportError { .writeFailed(file: url.path, reason: reason) }
        let specData: Data
        do { specData = try specification() } catch { throw fail("\(error)") }
        // Core ML finds the items by these identifiers; they only need to be unique within the manifest.
        let specID = UUID().uuidString, weightsID = UUID().uuidString
        let manifest: [String: Any] = [
            "fileFormatVersion": "1.0.0",
            "itemInfoEntries": [
                specID: ["author": "com.apple.CoreML", "description": "CoreML Model Specification",
                         "name": "model.mlmodel", "path": "com.apple.CoreML/model.mlmodel"],
                weightsID: ["author": "com.apple.CoreML", "description": "CoreML Model Weights",
                            "name": "weights", "path": "com.apple.CoreML/weights"],
            ],
            "rootModelIdentifier": specID,
        ]
        do {
            try? fm.removeItem(at: tmp)
            let data = tmp.appendingPathComponent("Data/com.apple.CoreML")
            try fm.createDirectory(at: data.appendingPathComponent("weights"), withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
                .write(to: tmp.appendingPathComponent("Manifest.json"))
            try specData.write(to: data.appendingPathComponent("model.mlmodel"))
            try weights.write(to: data.appendingPathComponent("weights/weight.bin"))
            var old: URL? = nil
            if fm.fileExists(atPath: url.path) {
                let o = dir.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).old")
                try? fm.removeItem(at: o)
                guard rename(url.path, o.path) == 0 else { throw fail(String(cString: strerror(errno))) }
                old = o
            }
            guard rename(tmp.path, url.path) == 0 else {
                let reason = String(cString: strerror(errno))
                if let old { _ = rename(old.path, url.path) }
                throw fail(reason)
            }
            if let old { try? fm.removeItem(at: old) }
        } catch let e as ExportError {
            try? fm.removeItem(at: tmp)
            throw e
        } catch {
            try? fm.removeItem(at: tmp)
            throw fail(error.localizedDescription)
        }
    }
}
