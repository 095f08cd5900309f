// CJS and script-tag entry: the export IS the class (`require('@confab/sdk')`, `window.Confab`),
// with the error classes as its static properties and `.default` for interop.
const Confab = require('./confab.js').default;
require('./execute.js');

Confab.default = Confab;
Confab.Confab = Confab;
module.exports = Confab;
