// Checks the config schema the way an editor uses it: yaml-language-server
// (VS Code's YAML extension, and others) reads each file's modeline
// `# yaml-language-server: $schema=...`. Usage:
//   node schema-editor-check.js SCHEMA good|bad FILE...
// good: no file may get an error or a warning; bad: every file must.
const fs = require('fs'), path = require('path'), url = require('url'), os = require('os');
const { getLanguageService } = require('yaml-language-server');
const { TextDocument } = require('vscode-languageserver-textdocument');

const [schema, mode, ...files] = process.argv.slice(2);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rampart-schema-'));
fs.copyFileSync(schema, path.join(dir, 'config.schema.json'));
const ls = getLanguageService({
  schemaRequestService: async (uri) => fs.readFileSync(url.fileURLToPath(uri), 'utf8'),
  workspaceContext: {
    resolveRelativePath: (rel, res) => url.pathToFileURL(path.resolve(path.dirname(url.fileURLToPath(res)), rel)).toString(),
  },
});
ls.configure({ validate: true, hover: true, completion: true, yamlVersion: '1.2', schemas: [] });

(async () => {
  let wrong = 0;
  for (const [i, f] of files.entries()) {
    const text = '# yaml-language-server: $schema=./config.schema.json\n' + fs.readFileSync(f, 'utf8');
    const doc = TextDocument.create(url.pathToFileURL(path.join(dir, i + '.yaml')).toString(), 'yaml', 1, text);
    const problems = (await ls.doValidation(doc, false)).filter((d) => d.severity <= 2);
    if (mode === 'good' && problems.length > 0) {
      wrong++;
      for (const p of problems) console.log(`${f}:${p.range.start.line}:${p.range.start.character + 1}: ${p.message}`);
    }
    if (mode === 'bad' && problems.length === 0) {
      wrong++;
      console.log(`${f}: no problem found`);
    }
  }
  fs.rmSync(dir, { recursive: true });
  console.log(`${mode}: ${files.length - wrong} passed, ${wrong} failed`);
  process.exit(wrong > 0 ? 1 : 0);
})();
