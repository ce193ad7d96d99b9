import { csvField } from './audit-export.js';

describe('CSV cells', () => {
  it.each([
    ['=HYPERLINK("x")', `"'=HYPERLINK(""x"")"`],
    ['+1', `"'+1"`],
    ['-2', `"'-2"`],
    ['@SUM(A1)', `"'@SUM(A1)"`],
    ['\tcmd', `"'\tcmd"`],
    ['\rcmd', `"'\rcmd"`],
    // Already quoted once: one more quote, so dropping one leading quote always gives the stored value back.
    ["'=x", `"''=x"`],
    ['curl/8.5', '"curl/8.5"'],
    ["it's", `"it's"`],
  ])('%j becomes %s', (value, cell) => {
    expect(csvField(value)).toBe(cell);
  });

  it('leaves numbers unquoted', () => {
    expect(csvField(-3)).toBe('-3');
  });
});
