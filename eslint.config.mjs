import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const CLOUD_SDKS = ['@google-cloud/storage', '@google-cloud/bigquery', '@google-cloud/pubsub'];

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
        { patterns: [{ group: CLOUD_SDKS, message: 'Import cloud SDKs only from shared/adapters/**' }] },
      ],
    },
  },
  {
    // Domain code gets adapters through ports, from the composition root (shared/composition/).
    files: [
      'shared/{ingest,events,warehouse,contracts,storage,delivery,pull,dashboard,replay,governance}/**',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [...CLOUD_SDKS, '@duckdb/node-api'],
              message: 'Domain code imports no SDK: add a port and an adapter in shared/adapters/.',
            },
            {
              group: ['**/adapters', '**/adapters/**', '**/local', '**/local/**', '**/composition/**'],
              message:
                'Domain code imports no adapter or local-stack module: take a port, wired in shared/composition/.',
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
    // Function roots ask the runtime for services; they import no SDK, no local-stack module, no other function.
    files: ['functions/*/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [...CLOUD_SDKS, '@duckdb/node-api'],
              message: 'Functions get services from the runtime.',
            },
            {
              group: ['**/shared/local/**'],
              message: 'Functions get services from shared/composition/runtime, never the local stack.',
            },
            { regex: '^\\.\\./(?!\\.\\./)', message: 'No function imports another.' },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/adapters/**', 'shared/composition/**', 'test/**', 'bench/**', 'deploy/scripts/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
