import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.smelter/**',
      'coverage/**',
      'bench/.data/**',
      'bin/**',
      '*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Only adapters may import cloud SDKs: keeps the domain testable and the functions thin.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@google-cloud/storage', '@google-cloud/bigquery', '@google-cloud/pubsub'],
              message: 'Import cloud SDKs only from shared/adapters/**',
            },
          ],
        },
      ],
    },
  },
  {
    // The dashboard's page script runs in the browser (no build step, served as is).
    files: ['web/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(
        [
          'window',
          'document',
          'location',
          'history',
          'fetch',
          'setInterval',
          'URLSearchParams',
          'vegaEmbed',
        ].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    files: ['shared/adapters/**', 'test/**', 'bench/**', 'deploy/scripts/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
